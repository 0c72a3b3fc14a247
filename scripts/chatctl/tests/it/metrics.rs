//! `GET /metrics` on `chatctl serve`: the counters the Lambdas write as CloudWatch metrics,
//! in Prometheus text, moving as the widget's operations run.

use serde_json::json;

use crate::common::{Server, operation, post, serve, temp_dir};

const KEY: &str = "da2-metrics-key";

/// One sample's value, by its whole name and labels.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

async fn scrape(server: &Server, key: Option<&str>) -> (u16, String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn counters_move_after_create_chat_token_and_a_refused_token() {
    let data = temp_dir("serve-metrics");
    let server = serve(&data, &[]);
    let token = server.token.clone().unwrap();
    // Local mode's verifier fetches the development key set from this server (one request
    // of its own) on first use: done before counting.
    let body = operation(&server, "verifyToken", json!({"token": token})).await;
    assert_eq!(body["data"]["verifyToken"]["identity"], "alex");
    let (status, kind, before) = scrape(&server, None).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert!(before.contains("# TYPE context_chat_chat_tokens_issued_total counter"));

    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "device-1", "token": token}),
    )
    .await;
    assert!(body["data"]["createChatToken"].is_string(), "{body}");
    let body = operation(
        &server,
        "createChatToken",
        json!({"deviceId": "device-1", "token": "not-a-token"}),
    )
    .await;
    assert!(body["errors"].is_array(), "{body}");

    let (_, _, after) = scrape(&server, None).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(moved("context_chat_chat_tokens_issued_total"), 1.0);
    assert_eq!(
        moved("context_chat_requests_total"),
        2.0,
        "scrapes are not counted"
    );
    assert_eq!(
        moved("context_chat_tokens_refused_total{error_type=\"BadRequest\"}"),
        1.0
    );
    assert_eq!(
        moved("context_chat_errors_total{error_type=\"BadRequest\"}"),
        1.0
    );
    assert_eq!(
        moved("context_chat_errors_total{error_type=\"InternalError\"}"),
        0.0
    );
    // Local mode provisions in its embedded Twilio: those requests are Twilio's (counted as
    // such), not the product's.
    assert!(moved("context_chat_twilio_requests_total") >= 2.0);
    // Nothing personal: neither the identity nor the token shows.
    assert!(!after.contains("alex") && !after.contains(&token[..20]));
}

#[tokio::test]
async fn with_an_api_key_the_metrics_need_it() {
    let data = temp_dir("serve-metrics-key");
    let server = serve(&data, &[("CHAT_API_KEY", KEY.into())]);
    let (status, _, body) = scrape(&server, None).await;
    assert_eq!(status, 401);
    assert!(body.contains("x-api-key"), "{body}");
    assert_eq!(scrape(&server, Some("da2-wrong")).await.0, 401);
    let (status, _, text) = scrape(&server, Some(KEY)).await;
    assert_eq!(status, 200);
    // The refused GraphQL call (no key) counts as a request but not as an API error.
    let (status, _) = post(&server, json!({"query": "query { __typename }"}), None).await;
    assert_eq!(status, 401);
    let (_, _, after) = scrape(&server, Some(KEY)).await;
    assert_eq!(
        sample(&after, "context_chat_requests_total")
            - sample(&text, "context_chat_requests_total"),
        1.0
    );
}
