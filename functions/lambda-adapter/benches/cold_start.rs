//! Cold start of each Lambda function: the time from starting its process to its first
//! answered invocation (settings fetched from SSM on moto, the issuer's JWKS fetched over
//! loopback; create-chat-token also checks the user's memberships with the Twilio stand-in,
//! one round trip of three GETs), and the process's peak memory (VmHWM). Targets (issue 3):
//! under 50 ms and under 32 MiB.
//!
//! Run it with `scripts/bench-cold-start`, which builds the release binaries first.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{
    API_SECRET, Emulator, Function, Issuer, Moto, TestKey, TwilioStandIn, appsync_event, claims,
    jwks, put_settings,
};

const RUNS: usize = 15;

struct Sample {
    millis: f64,
    peak_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn cold_start(
    binary: &std::path::Path,
    name: &str,
    emulator: &Emulator,
    env: &[(&str, String)],
    event: &Value,
) -> Sample {
    // The invocation waits in the emulator until the function asks for it.
    let pending = {
        let event = event.clone();
        let invoke_url = emulator.invocations_url(name);
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(invoke_url)
                .json(&event)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map(|_| Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    let function = Function::start(binary, name, emulator, env);
    let answered = pending
        .await
        .unwrap()
        .expect("the first invocation is answered");
    let peak_kib = peak_rss_kib(function.pid());
    drop(function);
    Sample {
        millis: answered.duration_since(started).as_secs_f64() * 1000.0,
        peak_kib,
    }
}

#[tokio::main]
async fn main() {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| test_support::workspace_root().join("target"));
    let moto = Moto::start();
    let key = TestKey::es256("bench");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let stack = test_support::unique("cold");
    put_settings(&moto.ssm().await, &stack, &issuer.url(), API_SECRET).await;
    let twilio = TwilioStandIn::start_unchecked().await;
    let emulator = Emulator::start();
    let mut env = moto.env();
    env.push(("STACK_NAME", stack));
    env.push(("TWILIO_API_BASE_URL", twilio.base_url()));
    let token = key.token(&claims("alex", &["general", "random"]));

    println!(
        "cold start: process start → first answered invocation (SSM on moto, JWKS on loopback, Twilio stand-in)"
    );
    println!("{RUNS} runs each; targets: < 50 ms, < 32 MiB peak\n");
    for (name, event) in [
        (
            "verify-token",
            appsync_event("Query", "verifyToken", json!({"token": token})),
        ),
        (
            "create-chat-token",
            appsync_event(
                "Mutation",
                "createChatToken",
                json!({"deviceId": "d", "token": token}),
            ),
        ),
    ] {
        let binary = target.join("release").join(name);
        let fetches_before = issuer.fetches();
        let mut samples = Vec::new();
        for _ in 0..RUNS {
            samples.push(cold_start(&binary, name, &emulator, &env, &event).await);
        }
        assert_eq!(
            issuer.fetches() - fetches_before,
            RUNS,
            "each cold start fetched the JWKS once"
        );
        let mut millis: Vec<f64> = samples.iter().map(|s| s.millis).collect();
        millis.sort_by(f64::total_cmp);
        let peak = samples.iter().map(|s| s.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let median = millis[RUNS / 2];
        let size =
            std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0) as f64 / 1024.0 / 1024.0;
        println!(
            "{name:<18} median {median:6.1} ms  (min {:5.1}, max {:5.1})  peak memory {peak:5.1} MiB  binary {size:4.1} MiB  {}",
            millis[0],
            millis[RUNS - 1],
            if median < 50.0 && peak < 32.0 {
                "MET"
            } else {
                "MISSED"
            }
        );
    }
}
