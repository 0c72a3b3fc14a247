//! Cold start of the token functions, measured from outside: the time from spawning the
//! process to its first answered invocation under cargo lambda's runtime emulator, and where
//! that time goes, read off the stand-ins' own clocks (no timer inside the function). SSM and
//! DynamoDB on moto behind a timing proxy, the issuer's JWKS on loopback, and for
//! create-chat-token a returning user, already in the Twilio stand-in's conversations (one
//! round of GETs, no change): once without the table, as issue 29 measured it (target ≤ 25
//! ms), and once with it (revocations, the ledger and the minting limit: what a deployment
//! has; on record). verify-token < 50 ms; peak memory (VmHWM) < 32 MiB.
//!
//! Run it with `scripts/bench-cold-start`, which builds the binaries first (the `production`
//! profile, as the Lambdas are built, for this machine's CPU) and names them in
//! `COLD_START_BIN_DIR`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{
    API_SECRET, CountingProxy, Emulator, Function, Issuer, Moto, TestKey, TwilioStandIn,
    appsync_event, claims, jwks, put_settings,
};

const RUNS: usize = 15;
const CONTEXTS: [&str; 2] = ["general", "random"];

/// One cold start: its total and its phases, each from spawn (milliseconds).
struct Sample {
    total: f64,
    peak_kib: u64,
    /// (what, started, ended)
    phases: Vec<(String, f64, f64)>,
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

struct StandIns {
    aws: CountingProxy,
    issuer: Issuer,
    twilio: TwilioStandIn,
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

async fn cold_start(
    binary: &Path,
    name: &str,
    emulator: &Emulator,
    env: &[(&str, String)],
    event: &Value,
    stand_ins: &StandIns,
) -> Sample {
    // The invocation waits in the emulator until the function asks for it.
    let pending = {
        let event = event.clone();
        let invoke_url = emulator.invocations_url(name);
        tokio::spawn(async move {
            let answer = reqwest::Client::new()
                .post(invoke_url)
                .json(&event)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .and_then(|r| r.error_for_status());
            let at = Instant::now();
            let body: Value = answer.expect("answered").json().await.expect("JSON");
            (at, body)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (aws_before, jwks_before) = (
        stand_ins.aws.request_times().len(),
        stand_ins.issuer.fetch_times().len(),
    );
    stand_ins.twilio.clear_log();

    let started = Instant::now();
    let function = Function::start(binary, name, emulator, env);
    let (answered, body) = pending.await.unwrap();
    assert!(
        body.is_string() || body.get("identity").is_some(),
        "{name} answered the invocation, not an error: {body}"
    );
    let peak_kib = peak_rss_kib(function.pid());
    drop(function);

    let mut phases = Vec::new();
    for t in &stand_ins.aws.request_times()[aws_before..] {
        let what = t.operation.rsplit('.').next().unwrap_or(&t.operation);
        phases.push((
            format!("AWS {what}"),
            ms(started, t.arrived),
            ms(started, t.answered),
        ));
    }
    for (arrived, served) in &stand_ins.issuer.fetch_times()[jwks_before..] {
        phases.push((
            "JWKS fetch".into(),
            ms(started, *arrived),
            ms(started, *served),
        ));
    }
    let twilio = stand_ins.twilio.requests();
    if let (Some(first), Some(last)) = (
        twilio.iter().map(|r| r.started).min(),
        twilio.iter().map(|r| r.ended).max(),
    ) {
        phases.push((
            format!("Twilio round ({} requests)", twilio.len()),
            ms(started, first),
            ms(started, last),
        ));
    }
    phases.sort_by(|a, b| a.1.total_cmp(&b.1));
    Sample {
        total: ms(started, answered),
        peak_kib,
        phases,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Each phase's median start and end across the runs of the most common shape (the same
/// phases in the same order; a run whose requests interleaved otherwise is left out).
fn print_timeline(samples: &[Sample]) {
    let shape = |s: &Sample| s.phases.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    let mut shapes: Vec<(Vec<String>, usize)> = Vec::new();
    for sample in samples {
        let this = shape(sample);
        match shapes.iter_mut().find(|(s, _)| *s == this) {
            Some((_, n)) => *n += 1,
            None => shapes.push((this, 1)),
        }
    }
    let common = shapes
        .iter()
        .max_by_key(|(_, n)| *n)
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    let alike: Vec<&Sample> = samples.iter().filter(|s| shape(s) == common).collect();
    let first = &alike[0].phases;
    let mut previous_end = 0.0;
    println!(
        "    {:>6}  {:>6}  phase (median of {} runs)",
        "from",
        "to",
        alike.len()
    );
    for (i, (what, _, _)) in first.iter().enumerate() {
        let from = median(alike.iter().map(|s| s.phases[i].1).collect());
        let to = median(alike.iter().map(|s| s.phases[i].2).collect());
        if from > previous_end + 0.05 {
            println!(
                "    {previous_end:6.1}  {from:6.1}  in the function ({:.1} ms)",
                from - previous_end
            );
        }
        println!("    {from:6.1}  {to:6.1}  {what} ({:.1} ms)", to - from);
        previous_end = previous_end.max(to);
    }
    let total = median(alike.iter().map(|s| s.total).collect());
    println!(
        "    {previous_end:6.1}  {total:6.1}  in the function, then the answer ({:.1} ms)",
        total - previous_end
    );
}

#[tokio::main]
async fn main() {
    let bin_dir = std::env::var("COLD_START_BIN_DIR")
        .map(PathBuf::from)
        .expect("COLD_START_BIN_DIR names the built binaries: run scripts/bench-cold-start");
    let moto = Moto::start();
    let aws = CountingProxy::start(moto.url()).await;
    let key = TestKey::es256("bench");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let stack = test_support::unique("cold");
    put_settings(&moto.ssm().await, &stack, &issuer.url(), API_SECRET).await;
    aws_ports::create_table(&moto.dynamodb().await, &stack)
        .await
        .expect("the table");
    let twilio = TwilioStandIn::start_unchecked().await;
    // A returning user: already in both conversations.
    twilio.add_user("alex");
    for context in CONTEXTS {
        twilio.add_conversation(context, "");
        twilio.add_participant(context, "alex");
    }
    let emulator = Emulator::start();
    let mut no_table = test_support::aws_env(&aws.url());
    no_table.push(("STACK_NAME", stack.clone()));
    no_table.push(("TWILIO_API_BASE_URL", twilio.base_url()));
    let mut env = no_table.clone();
    env.push(("NOTIFICATIONS_TABLE", stack));
    let token = key.token(&claims("alex", &CONTEXTS));
    let stand_ins = StandIns {
        aws,
        issuer,
        twilio,
    };

    println!(
        "cold start: spawn → first answered invocation, from outside (SSM and DynamoDB on moto, JWKS on loopback, Twilio stand-in)"
    );
    println!("binaries: {}; {RUNS} runs each\n", bin_dir.display());
    let create = appsync_event(
        "Mutation",
        "createChatToken",
        json!({"deviceId": "d", "token": token}),
    );
    // (function, what it meets, its environment, the invocation, target in ms: None for a
    // measurement on record only)
    let cases = [
        (
            "verify-token",
            "revocations in the table",
            &env,
            appsync_event("Query", "verifyToken", json!({"token": token})),
            Some(50.0),
        ),
        (
            "create-chat-token",
            "no table, as issue 29 measured it",
            &no_table,
            create.clone(),
            Some(25.0),
        ),
        (
            "create-chat-token",
            "the table: revocations, ledger, limit",
            &env,
            create,
            None,
        ),
    ];
    for (name, setup, env, event, target_ms) in cases {
        let binary = bin_dir.join(name);
        let mut samples = Vec::new();
        for _ in 0..RUNS {
            samples.push(cold_start(&binary, name, &emulator, env, &event, &stand_ins).await);
        }
        let totals: Vec<f64> = samples.iter().map(|s| s.total).collect();
        let (min, max) = (
            totals.iter().copied().fold(f64::MAX, f64::min),
            totals.iter().copied().fold(0.0, f64::max),
        );
        let median_ms = median(totals);
        let peak = samples.iter().map(|s| s.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
        let size =
            std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0) as f64 / 1024.0 / 1024.0;
        let verdict = match target_ms {
            Some(target) if median_ms <= target && peak < 32.0 => {
                format!("target ≤ {target} ms, < 32 MiB: MET")
            }
            Some(target) => format!("target ≤ {target} ms, < 32 MiB: MISSED"),
            None => "no target: on record".to_owned(),
        };
        println!("{name} ({setup})");
        println!(
            "  median {median_ms:6.1} ms  (min {min:5.1}, max {max:5.1})  peak memory {peak:5.1} MiB  binary {size:4.1} MiB  {verdict}"
        );
        print_timeline(&samples);
        println!();
    }
}
