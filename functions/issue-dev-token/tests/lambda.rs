//! issue-dev-token under cargo lambda's local runtime, its key in SSM on moto.

use std::path::Path;

use context_chat::dev_keys::generate_es256;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use test_support::{Emulator, Function, Moto, put_parameter, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_issue-dev-token");

fn http_event(method: &str, query: Value) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /token",
        "rawPath": "/token",
        "rawQueryString": "",
        "headers": {"host": "dev.example.org"},
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012", "apiId": "dev", "domainName": "dev.example.org",
            "domainPrefix": "dev", "requestId": "r", "routeKey": "POST /token", "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 1795341600000u64,
            "http": {"method": method, "path": "/token", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "curl"}
        },
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn signs_a_context_token_with_the_key_in_ssm() {
    let moto = Moto::start();
    let stack = unique("dev");
    let key = generate_es256().unwrap();
    let ssm = moto.ssm().await;
    let path = format!("/{stack}-dev-extras/chat-development");
    put_parameter(&ssm, &format!("{path}/privateKey"), &key.private_pem, true).await;
    put_parameter(&ssm, &format!("{path}/keyId"), &key.kid, false).await;
    let emulator = Emulator::start();
    let mut env = moto.env();
    env.push(("STACK_NAME", stack));
    let function = Function::start(Path::new(BINARY), "issue-dev-token", &emulator, &env);

    let answer = emulator
        .invoke(
            "issue-dev-token",
            &http_event(
                "POST",
                json!({"identity": "alex", "context": "general,random"}),
            ),
        )
        .await
        .value();
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

    let answer = emulator
        .invoke(
            "issue-dev-token",
            &http_event("POST", json!({"context": "general"})),
        )
        .await
        .value();
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
