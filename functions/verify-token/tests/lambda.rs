//! The verify-token function under cargo lambda's local runtime, with its settings in SSM on
//! moto (behind a counting proxy) and the issuer's JWKS on loopback.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::{
    CountingProxy, Emulator, Function, Issuer, Moto, Stack, TestKey, appsync_event, claims,
    put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_verify-token");

fn event(arguments: Value) -> Value {
    appsync_event("Query", "verifyToken", arguments)
}

/// The function's environment: SSM under `stack` at `endpoint`.
fn lambda_env(endpoint: &str, stack: &str) -> Vec<(&'static str, String)> {
    let mut env = test_support::aws_env(endpoint);
    env.push(("STACK_NAME", stack.to_owned()));
    env
}

#[tokio::test]
async fn answers_good_and_bad_tokens_and_reads_settings_and_keys_once() {
    let moto = Moto::start();
    let proxy = CountingProxy::start(moto.url()).await;
    let (key, issuer) = Issuer::with(TestKey::es256("platform-1")).await;
    let stack = unique("verify");
    put_settings(
        &moto.ssm().await,
        &stack,
        &issuer.url(),
        "lambda-api-secret",
    )
    .await;
    let emulator = Emulator::start();
    let function = Function::start(
        Path::new(BINARY),
        "verify-token",
        &emulator,
        &lambda_env(&proxy.url(), &stack),
    );

    let mut with_roles = claims("alex", &["general", "SHIPMENT-42"]);
    with_roles["roles"] = json!({"SHIPMENT-42": "moderator"});
    let token = key.token(&with_roles);
    let answer = emulator
        .answer("verify-token", &event(json!({"token": token})))
        .await;
    assert_eq!(
        answer,
        json!({
            "identity": "alex",
            "contexts": ["general", "SHIPMENT-42"],
            "roles": [
                {"context": "general", "role": "member"},
                {"context": "SHIPMENT-42", "role": "moderator"},
            ],
        })
    );
    let (ssm_calls, jwks_calls) = (proxy.requests(), issuer.fetches());
    assert!(ssm_calls >= 1, "settings came from SSM");
    assert_eq!(jwks_calls, 1);

    // A second invocation, with another user's token: no SSM and no JWKS request.
    let other = key.token(&claims("sam", &["general"]));
    let answer = emulator
        .answer("verify-token", &event(json!({"token": other})))
        .await;
    assert_eq!(answer["identity"], "sam");
    assert_eq!(
        proxy.requests(),
        ssm_calls,
        "no SSM request on the second invocation"
    );
    assert_eq!(
        issuer.fetches(),
        jwks_calls,
        "no JWKS request on the second invocation"
    );

    // Bad tokens: the contract's error type, a readable message.
    let mut expired = claims("alex", &["general"]);
    expired["exp"] = json!(test_support::now() - 600);
    for (token, expected) in [
        (key.token(&expired), "AccessDenied"),
        (
            TestKey::es256("stranger").token(&claims("eve", &["general"])),
            "AccessDenied",
        ),
        (key.token(&claims("alex", &["bad context"])), "BadRequest"),
        ("not.a.token".to_owned(), "BadRequest"),
    ] {
        let (error_type, message) = emulator
            .refusal("verify-token", &event(json!({"token": token})))
            .await;
        assert_eq!(error_type, expected, "{message}");
        assert!(!message.is_empty() && !message.contains(&token));
    }

    // Missing or mistyped arguments, and an event that is not AppSync's.
    for arguments in [json!({}), json!({"token": null}), json!({"token": 42})] {
        let (error_type, message) = emulator.refusal("verify-token", &event(arguments)).await;
        assert_eq!(error_type, "BadRequest");
        assert!(message.contains("token"), "{message}");
    }
    let (error_type, _) = emulator
        .refusal("verify-token", &json!({"hello": "world"}))
        .await;
    assert_eq!(error_type, "BadRequest");

    // Logs: JSON lines, the request id on invocation lines, never a token or the secret.
    let logs = function.output();
    assert!(!logs.contains(&token) && !logs.contains(&other));
    assert!(!logs.contains("lambda-api-secret"));
    let refused: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "context token refused")
        .collect();
    assert!(!refused.is_empty(), "refusals are logged:\n{logs}");
    for line in refused {
        assert!(
            line["spans"][0]["requestId"].is_string(),
            "request id on {line}"
        );
    }
}

#[tokio::test]
async fn a_missing_parameter_is_entity_not_found_naming_it() {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique("verify-missing");
    put_settings(&ssm, &stack, "https://toolbox.example/jwks.json", "secret").await;
    ssm.delete_parameter()
        .name(format!("/{stack}/chat/jwks.json"))
        .send()
        .await
        .unwrap();
    let emulator = Emulator::start();
    let function = Function::of(BINARY, &emulator, &moto.function_env(&stack, None));
    let token = TestKey::es256("k").token(&claims("alex", &["general"]));
    for _ in 0..2 {
        let (error_type, message) = emulator
            .refusal("verify-token", &event(json!({"token": token})))
            .await;
        assert_eq!(error_type, "EntityNotFound");
        assert!(
            message.contains(&format!("/{stack}/chat/jwks.json")),
            "{message}"
        );
    }
    assert!(function.wait_for_output("warm-up failed", Duration::from_secs(5)));
}

#[tokio::test]
async fn unreachable_ssm_is_an_internal_error() {
    let port = test_support::free_port();
    let emulator = Emulator::start();
    let _function = Function::start(
        Path::new(BINARY),
        "verify-token",
        &emulator,
        &lambda_env(&format!("http://127.0.0.1:{port}"), "nowhere"),
    );
    let token = TestKey::es256("k").token(&claims("alex", &["general"]));
    let (error_type, message) = emulator
        .refusal("verify-token", &event(json!({"token": token})))
        .await;
    assert_eq!(error_type, "InternalError");
    assert!(message.contains("/nowhere/"), "{message}");
}

#[tokio::test]
async fn answers_cargo_lambda_invoke() {
    let deployment = Stack::start("verify-cli", TestKey::rs256("platform-rsa"), "secret").await;
    let (moto, key, stack) = (&deployment.moto, &deployment.key, &deployment.name);
    let emulator = Emulator::start();
    let _function = Function::of(BINARY, &emulator, &moto.function_env(stack, None));

    let token = key.token(&claims("kim", &["GROUP-PRIVATE-7"]));
    let (good, bad) = (event(json!({"token": token})), event(json!({"token": "x"})));
    // The command blocks until the function answers; keep it off the async runtime.
    let (answered, refused) = tokio::task::spawn_blocking(move || {
        (
            emulator.invoke_with_cli("verify-token", &good),
            emulator.invoke_with_cli("verify-token", &bad),
        )
    })
    .await
    .unwrap();

    let (ok, stdout, stderr) = answered;
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        answer,
        json!({
            "identity": "kim",
            "contexts": ["GROUP-PRIVATE-7"],
            "roles": [{"context": "GROUP-PRIVATE-7", "role": "member"}],
        })
    );
    let (ok, _, stderr) = refused;
    assert!(!ok, "a function error fails the command");
    assert!(
        stderr.contains("BadRequest"),
        "the error type is shown: {stderr}"
    );
}

#[tokio::test]
async fn a_revoked_identitys_older_token_is_access_denied_and_a_newer_one_works() {
    use context_chat::{revocations, store};

    let deployment = Stack::start("verify-revoked", TestKey::es256("platform-1"), "secret").await;
    let (moto, key, stack) = (&deployment.moto, &deployment.key, &deployment.name);
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, stack).await.unwrap();
    let now = test_support::now();
    // As revokeIdentity left it in the table before syncs were recorded beside it.
    let table = aws_ports::DynamoStore::new(dynamodb, stack.clone());
    store::write_over(
        &table,
        &revocations::key("alex"),
        &serde_json::json!({"identity": "alex", "revokedBefore": now - 10}),
    )
    .await
    .unwrap();
    let emulator = Emulator::start();
    let mut env = lambda_env(moto.url(), stack);
    env.push(("NOTIFICATIONS_TABLE", stack.clone()));
    let _function = Function::of(BINARY, &emulator, &env);

    let mut old = claims("alex", &["general"]);
    old["iat"] = json!(now - 60);
    let (error_type, message) = emulator
        .invoke("verify-token", &event(json!({"token": key.token(&old)})))
        .await
        .error();
    assert_eq!(error_type, "AccessDenied");
    assert!(message.contains("revoked"), "{message}");
    let answer = emulator
        .invoke(
            "verify-token",
            &event(json!({"token": key.token(&claims("alex", &["general"]))})),
        )
        .await
        .value();
    assert_eq!(answer["identity"], "alex");
}
