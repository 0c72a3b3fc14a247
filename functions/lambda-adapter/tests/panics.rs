//! What a bug costs under cargo lambda's runtime: a handler that panics ends its process, as
//! the production profile's `panic = "abort"` does in the cloud (the adapter's hook makes these
//! debug builds do the same), after one log line that says where (its message cut short) and
//! the invocation's metrics with an `InternalError`. Lambda then answers the caller with a
//! function error and the next invocation gets a fresh process.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use serde_json::json;
use test_support::{Emulator, Function, Invocation, appsync_event};

const BINARY: &str = env!("CARGO_BIN_EXE_panic-probe");

#[tokio::test]
async fn a_panic_ends_the_process_after_a_log_line_and_its_metrics() {
    let emulator = Emulator::start();
    let function = Function::of(BINARY, &emulator, &[]);
    let answered = emulator
        .invoke("panic-probe", &appsync_event("Query", "probe", json!({})))
        .await;
    assert_eq!(answered, Invocation::Answered(json!("answered")));

    // The emulator keeps this invocation waiting for an answer that never comes.
    let pending = {
        let url = emulator.invocations_url("panic-probe");
        tokio::spawn(async move {
            let event = appsync_event("Query", "probe", json!({"panic": true}));
            reqwest::Client::new()
                .post(url)
                .json(&event)
                .timeout(Duration::from_secs(20))
                .send()
                .await
        })
    };
    let mut function = function;
    let status = tokio::task::spawn_blocking(move || {
        let status = function.wait_for_exit(Duration::from_secs(10));
        (status, function)
    })
    .await
    .unwrap();
    let (status, function) = status;
    let status = status.expect("the process ended");
    assert_eq!(status.signal(), Some(6), "ended by SIGABRT: {status:?}");
    pending.abort();

    let logs = function.output();
    let line = logs
        .lines()
        .find(|l| l.contains("panicked (a bug)"))
        .unwrap_or_else(|| panic!("a log line for the panic: {logs}"));
    assert!(line.contains("panic-probe.rs"), "it says where: {line}");
    assert!(
        !logs.contains("c2lnbmF0dXJl"),
        "the message is cut before it could hold a whole token: {logs}"
    );
    let metrics = function.metrics(2);
    let last = metrics
        .last()
        .expect("an EMF line for the failed invocation");
    assert_eq!(last["ErrorType"], "InternalError", "{last}");
    assert_eq!(last["Errors"], 1, "{last}");
}

#[test]
fn the_production_profile_aborts_as_the_hook_does_in_tests() {
    let manifest =
        std::fs::read_to_string(test_support::workspace_root().join("Cargo.toml")).unwrap();
    let production = manifest
        .split("\n[")
        .find(|section| section.starts_with("profile.production]"))
        .expect("Cargo.toml has [profile.production]");
    assert!(
        production.lines().any(|l| l.trim() == r#"panic = "abort""#),
        "[profile.production] says panic = \"abort\": {production}"
    );
}
