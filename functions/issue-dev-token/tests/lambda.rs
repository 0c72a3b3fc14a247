//! issue-dev-token under cargo lambda's local runtime, its key in SSM on moto.

use aws_ports::create_table;
use context_chat::dev_keys::generate_es256;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use test_support::{Moto, early_in_a_minute, http_api_event, put_parameter, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_issue-dev-token");

fn http_event(method: &str, path: &str, query: &[(&str, &str)]) -> Value {
    http_api_event(
        method,
        "dev.example.org",
        path,
        query,
        json!({"host": "dev.example.org"}),
        None,
    )
}

/// Moto with a development key where the dev-extras stack keeps it (under a stack named
/// after `prefix`).
async fn dev_key_in_ssm(prefix: &str) -> (Moto, String, context_chat::dev_keys::DevKey) {
    let moto = Moto::start();
    let stack = unique(prefix);
    let key = generate_es256().unwrap();
    let ssm = moto.ssm().await;
    let path = format!("/{stack}-dev-extras/chat-development");
    put_parameter(&ssm, &format!("{path}/privateKey"), &key.private_pem, true).await;
    put_parameter(&ssm, &format!("{path}/keyId"), &key.kid, false).await;
    (moto, stack, key)
}

#[tokio::test]
async fn signs_a_context_token_with_the_key_in_ssm() {
    let (moto, stack, key) = dev_key_in_ssm("dev").await;
    let (emulator, function) = moto.function(BINARY, &stack, None, []);

    let answer = emulator
        .answer(
            "issue-dev-token",
            &http_event(
                "POST",
                "/token",
                &[("identity", "alex"), ("context", "general,random")],
            ),
        )
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let token = body["token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_ec_pem(key.public_pem.as_bytes()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "alex");
    assert_eq!(claims["contexts"], json!(["general", "random"]));

    // The published JWKS verifies the token: a test deployment can point its JWKS URL here.
    let answer = emulator
        .answer("issue-dev-token", &http_event("GET", "/jwks.json", &[]))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let jwk = jwks.find(&key.kid).expect("the key's kid");
    let published =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(published["sub"], "alex");
    assert!(!answer["body"].as_str().unwrap().contains("\"d\""));

    let answer = emulator
        .answer(
            "issue-dev-token",
            &http_event("POST", "/token", &[("context", "general")]),
        )
        .await;
    assert_eq!(answer["statusCode"], 400, "{answer}");
    assert!(
        answer["body"]
            .as_str()
            .unwrap()
            .contains("identity is required")
    );
    let logs = function.output();
    assert!(
        !logs.contains(token) && !logs.contains("PRIVATE KEY"),
        "{logs}"
    );
}

/// With the table: each token on record under its xid (readable at `GET /token/{xid}`), and
/// one client address (API Gateway's `sourceIp`) limited to 10 a minute.
#[tokio::test]
async fn records_each_token_and_limits_each_client_address() {
    let (moto, stack, _key) = dev_key_in_ssm("dev-ledger").await;
    let table = unique("dev-ledger");
    create_table(&moto.dynamodb().await, &table).await.unwrap();
    let (emulator, _function) = moto.function(BINARY, &stack, Some(&table), []);
    let from = |address: &str, n: usize| {
        let identity = format!("dev-{n}");
        let mut event = http_event(
            "POST",
            "/token",
            &[("identity", &identity), ("context", "general")],
        );
        event["requestContext"]["http"]["sourceIp"] = json!(address);
        event
    };
    early_in_a_minute().await;
    let mut first = None;
    for n in 0..10 {
        let answer = emulator
            .answer("issue-dev-token", &from("203.0.113.7", n))
            .await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        first.get_or_insert(body);
    }
    let answer = emulator
        .answer("issue-dev-token", &from("203.0.113.7", 10))
        .await;
    assert_eq!(answer["statusCode"], 429, "{answer}");
    let retry = test_support::retry_after(&answer);
    assert!((1..=60).contains(&retry), "{answer}");
    // Another address is not held back.
    let answer = emulator
        .answer("issue-dev-token", &from("198.51.100.2", 11))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");

    let first = first.unwrap();
    let xid = first["xid"].as_str().unwrap();
    let answer = emulator
        .answer(
            "issue-dev-token",
            &http_event("GET", &format!("/token/{xid}"), &[]),
        )
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let record: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(record["kind"], "context-dev");
    assert_eq!(record["identity"], "dev-0");
    assert_eq!(
        record["tokenSha256"],
        context_chat::ledger::sha256_hex(first["token"].as_str().unwrap())
    );
}
