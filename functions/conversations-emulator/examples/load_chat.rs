//! The load driver of `scripts/load-chat` (not a test): `chatctl serve` in local mode under
//! chat traffic. It signs a context token for each of `--streams` identities (the data
//! directory's development key), gets each a Twilio access token from `createChatToken`
//! (which provisions them into `--rooms` rooms), opens one event stream per identity, then
//! posts `--rate` messages a second for `--seconds`, spread over the rooms. It prints
//! whether every stream received every message of its room, post → delivery latency
//! (p50/p99/max), the posts' own latency, and the server's RSS (`--pid`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use context_chat::dev_keys::{ContextClaims, ContextTokenSigner};
use serde_json::{Value, json};

struct Args {
    base: String,
    data: String,
    pid: Option<u32>,
    seconds: u64,
    rate: u64,
    streams: usize,
    rooms: usize,
}

fn args() -> Args {
    let mut a = Args {
        base: String::new(),
        data: String::new(),
        pid: None,
        seconds: 30,
        rate: 500,
        streams: 100,
        rooms: 10,
    };
    let all: Vec<String> = std::env::args().skip(1).collect();
    for pair in all.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--base" => a.base = value,
            "--data" => a.data = value,
            "--pid" => a.pid = value.parse().ok(),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--rate" => a.rate = value.parse().expect("--rate N"),
            "--streams" => a.streams = value.parse().expect("--streams N"),
            "--rooms" => a.rooms = value.parse().expect("--rooms N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !a.base.is_empty() && !a.data.is_empty(),
        "--base URL --data DIR"
    );
    a
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn rss(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return "unknown (no --pid)".into();
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    format!("{} now, {} at most", field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at] as f64 / 1000.0
}

/// What the streams saw: per identity, the bodies' sequence numbers; all latencies.
#[derive(Default)]
struct Seen {
    per_stream: HashMap<usize, usize>,
    latencies_us: Vec<u128>,
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::new();
    let pem = std::fs::read_to_string(format!("{}/dev-issuer-private.pem", a.data)).unwrap();
    let kid = std::fs::read_to_string(format!("{}/dev-issuer.kid", a.data)).unwrap();
    let signer = ContextTokenSigner::from_pem(&pem, kid.trim()).unwrap();
    let now = (micros_now() / 1_000_000) as u64;
    let room = |i: usize| format!("load-{}", i % a.rooms);

    let setup = Instant::now();
    let mut bearers = Vec::new();
    for i in 0..a.streams {
        let token = signer
            .sign(&ContextClaims {
                sub: format!("user-{i}"),
                contexts: vec![room(i)],
                iat: now,
                exp: now + 3600,
                iss: None,
                aud: None,
                roles: Default::default(),
            })
            .unwrap();
        let body: Value = http
            .post(format!("{}/graphql", a.base))
            .json(&json!({
                "query": "mutation($t: ID!) { createChatToken(deviceId: \"load\", token: $t) }",
                "variables": {"t": token},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = body["data"]["createChatToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned();
        bearers.push(bearer);
    }
    println!(
        "setup: {} identities provisioned into {} rooms in {:.1} s",
        a.streams,
        a.rooms,
        setup.elapsed().as_secs_f64()
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut readers = Vec::new();
    for (i, bearer) in bearers.iter().enumerate() {
        let mut response = http
            .get(format!("{}/local/v1/events", a.base))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if !block.contains("event: message") {
                        continue;
                    }
                    let sent: Option<u128> = block
                        .split("sent=")
                        .nth(1)
                        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|d| d.parse().ok());
                    let mut seen = seen.lock().unwrap();
                    *seen.per_stream.entry(i).or_default() += 1;
                    if let Some(sent) = sent {
                        seen.latencies_us.push(micros_now().saturating_sub(sent));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("streams: {} open; server RSS {}", bearers.len(), rss(a.pid));

    // One poster per room (its first identity), messages spread over the rooms in turn.
    let posters: Vec<(String, String)> = (0..a.rooms)
        .map(|r| (room(r), bearers[r].clone()))
        .collect();
    let total = a.rate * a.seconds;
    let post_latencies = Arc::new(Mutex::new(Vec::<u128>::with_capacity(total as usize)));
    let posted_per_room = Arc::new(Mutex::new(vec![0usize; a.rooms]));
    let refused = Arc::new(Mutex::new(0usize));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / a.rate));
    let mut posts = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticker.tick().await;
        let r = n as usize % a.rooms;
        let (context, bearer) = posters[r].clone();
        let (http, base) = (http.clone(), a.base.clone());
        let (latencies, refused) = (post_latencies.clone(), refused.clone());
        posts.push(tokio::spawn(async move {
            let sent = micros_now();
            let answer = http
                .post(format!("{base}/local/v1/conversations/{context}/messages"))
                .bearer_auth(&bearer)
                .json(&json!({"body": format!("message {n} sent={sent}")}))
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == 201 => latencies.lock().unwrap().push(micros_now() - sent),
                _ => *refused.lock().unwrap() += 1,
            }
        }));
        // Count the room's posts as sent (a refused one is reported apart).
        posted_per_room.lock().unwrap()[r] += 1;
    }
    for post in posts {
        let _ = post.await;
    }
    let posting = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for reader in &readers {
        reader.abort();
    }

    let seen = seen.lock().unwrap();
    let per_room = posted_per_room.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    let mut missing = 0usize;
    for i in 0..a.streams {
        let expected = per_room[i % a.rooms];
        let got = seen.per_stream.get(&i).copied().unwrap_or(0);
        missing += expected.saturating_sub(got);
    }
    let mut latencies = seen.latencies_us.clone();
    latencies.sort_unstable();
    let mut posts = post_latencies.lock().unwrap().clone();
    posts.sort_unstable();
    println!(
        "posted {total} messages in {:.1} s ({:.0}/s), {refused} refused",
        posting.as_secs_f64(),
        total as f64 / posting.as_secs_f64()
    );
    println!(
        "deliveries: {} of {} expected ({} missing)",
        latencies.len(),
        per_room
            .iter()
            .map(|n| n * a.streams / a.rooms)
            .sum::<usize>(),
        missing
    );
    println!(
        "post → delivery: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target: p99 ≤ 50 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "post answered: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&posts, 0.5),
        percentile(&posts, 0.99)
    );
    println!("server RSS: {}", rss(a.pid));
    let met = missing == 0 && refused == 0 && percentile(&latencies, 0.99) <= 50.0;
    println!("{}", if met { "MET" } else { "MISSED" });
}
