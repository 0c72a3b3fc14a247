//! What a bug costs under cargo lambda's runtime: a handler that panics answers the contract's
//! `InternalError` with a message that quotes nothing, the sandbox keeps serving, and the log
//! says where, cut short. The production profile unwinds as these debug builds do, so this is
//! the cloud's behaviour too.

use std::path::Path;

use serde_json::json;
use test_support::{Emulator, Function, Invocation, appsync_event};

const BINARY: &str = env!("CARGO_BIN_EXE_panic-probe");

#[tokio::test]
async fn a_panic_answers_internal_error_and_the_next_invocation_is_served() {
    let emulator = Emulator::start();
    let function = Function::start(Path::new(BINARY), "panic-probe", &emulator, &[]);
    let panicked = emulator
        .invoke(
            "panic-probe",
            &appsync_event("Query", "probe", json!({"panic": true})),
        )
        .await;
    let (error_type, message) = panicked.error();
    assert_eq!(error_type, "InternalError");
    assert_eq!(message, context_chat::panics::PANIC_MESSAGE);

    let answered = emulator
        .invoke("panic-probe", &appsync_event("Query", "probe", json!({})))
        .await;
    assert_eq!(answered, Invocation::Answered(json!("answered")));

    assert!(function.wait_for_output("panicked (a bug)", std::time::Duration::from_secs(5)));
    let logs = function.output();
    assert!(
        logs.contains("panic-probe.rs"),
        "the log says where: {logs}"
    );
    assert!(
        !logs.contains("c2lnbmF0dXJl"),
        "the message is cut before it could hold a whole token: {logs}"
    );
}

#[test]
fn the_production_profile_unwinds_as_the_tests_do() {
    let manifest =
        std::fs::read_to_string(test_support::workspace_root().join("Cargo.toml")).unwrap();
    let production = manifest
        .split("\n[")
        .find(|section| section.starts_with("profile.production]"))
        .expect("Cargo.toml has [profile.production]");
    assert!(
        production
            .lines()
            .any(|l| l.trim() == r#"panic = "unwind""#),
        "[profile.production] says panic = \"unwind\": {production}"
    );
}
