//! The deliver-events function under cargo lambda's local runtime: SQS records of events
//! in; each POSTed to a platform's receiver on loopback, signed; one the receiver refuses is
//! queued again on moto's events queue with its id and payload, one refused for a day goes
//! to the dead-letter queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use context_chat::events::Delivery;
use context_chat::events::signing::SigningKey;
use context_chat::notifications::QueueMessage;
use serde_json::{Value, json};
use test_support::{Emulator, Function, Moto, drain_queue, put_parameter, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_deliver-events");
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver that refuses (500) the first `refusals` requests.
async fn receiver(refusals: usize) -> (String, Received) {
    let received: Received = Default::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: String| async move {
                let mut all = seen.lock().unwrap();
                all.push((headers, body));
                match all.len() <= refusals {
                    true => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    false => axum::http::StatusCode::OK,
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn sqs_event(id: &str, delivery: &Delivery) -> Value {
    json!({"Records": [{
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": QueueMessage::Event(delivery.clone()).to_json(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341600000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:events",
        "awsRegion": "eu-west-1"
    }]})
}

fn delivery(first_at: u64) -> Delivery {
    Delivery {
        id: "msg_0123456789abcdef".into(),
        kind: "membership.joined".into(),
        payload: r#"{"type":"membership.joined","timestamp":"2026-12-07T10:00:00Z","data":{"context":"general","identity":"alex"}}"#.into(),
        attempt: 1,
        first_at,
    }
}

/// The events on a queue, parsed.
async fn queued(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Delivery> {
    drain_queue(sqs, url)
        .await
        .into_iter()
        .map(
            |m| match QueueMessage::from_json(m.body().unwrap()).unwrap() {
                QueueMessage::Event(delivery) => delivery,
                other => panic!("not an event: {other:?}"),
            },
        )
        .collect()
}

#[tokio::test]
async fn delivers_signed_retries_with_the_same_id_and_dead_letters_after_a_day() {
    let moto = Moto::start();
    let stack = unique("events");
    let ssm = moto.ssm().await;
    let (url, received) = receiver(2).await;
    put_parameter(&ssm, &format!("/{stack}/platform/eventsUrl"), &url, false).await;
    put_parameter(
        &ssm,
        &format!("/{stack}/platform/eventsSecret"),
        SECRET,
        true,
    )
    .await;
    let sqs = moto.sqs().await;
    let mut urls = Vec::new();
    for name in ["events", "events-dead"] {
        let queue = sqs
            .create_queue()
            .queue_name(format!("{stack}-{name}"))
            .send()
            .await;
        urls.push(queue.unwrap().queue_url.unwrap());
    }
    let (queue, dead) = (&urls[0], &urls[1]);
    let emulator = Emulator::start();
    let mut env = moto.function_env(&stack, None);
    env.push(("EVENTS_QUEUE_URL", queue.clone()));
    env.push(("EVENTS_DEAD_LETTER_QUEUE_URL", dead.clone()));
    let function = Function::of(BINARY, &emulator, &env);

    // Refused twice: each time the next attempt is queued (after 1 s, then 2 s) with the same
    // id and payload; the third attempt is taken, and nothing more is queued.
    let now = context_chat::clock::now_unix();
    let mut next = delivery(now);
    for (attempt, wait) in [(1, 1), (2, 2)] {
        let answer = emulator
            .answer("deliver-events", &sqs_event("r", &next))
            .await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        tokio::time::sleep(Duration::from_millis(wait * 1000 + 300)).await;
        let again = queued(&sqs, queue).await;
        assert_eq!(again.len(), 1, "{}", function.output());
        assert_eq!(again[0].attempt, attempt + 1);
        assert_eq!((&again[0].id, &again[0].payload), (&next.id, &next.payload));
        next = again[0].clone();
    }
    let answer = emulator
        .answer("deliver-events", &sqs_event("r", &next))
        .await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(queued(&sqs, queue).await.is_empty());
    let key = SigningKey::parse(&secrecy::SecretString::from(SECRET.to_owned())).unwrap();
    {
        let all = received.lock().unwrap();
        assert_eq!(all.len(), 3);
        for (headers, body) in all.iter() {
            let header = |n: &str| headers[n].to_str().unwrap().to_owned();
            assert_eq!(header("webhook-id"), "msg_0123456789abcdef");
            assert_eq!(body, &next.payload);
            let timestamp = header("webhook-timestamp").parse().unwrap();
            assert!(key.verify(
                &header("webhook-id"),
                timestamp,
                body,
                &header("webhook-signature")
            ));
        }
    }

    // An event first tried more than a day ago and refused again is dead-lettered (by a new
    // process, which reads the new URL).
    drop(function);
    let (url, _) = receiver(usize::MAX).await;
    put_parameter(&ssm, &format!("/{stack}/platform/eventsUrl"), &url, false).await;
    let old = Delivery {
        attempt: 96,
        ..delivery(now - 24 * 3600)
    };
    let function = Function::of(BINARY, &emulator, &env);
    let answer = emulator
        .answer("deliver-events", &sqs_event("d", &old))
        .await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(queued(&sqs, dead).await, [old]);
    assert!(queued(&sqs, queue).await.is_empty());
    let logs = function.output();
    assert!(logs.contains("event dead-lettered"), "{logs}");
    assert!(
        !logs.contains(SECRET.trim_start_matches("whsec_")),
        "{logs}"
    );
}
