//! The token-routes function under cargo lambda's local runtime: its settings (Twilio's and
//! Virgil's) in SSM on moto, the ledger in moto's DynamoDB, the issuer's JWKS on loopback and
//! Twilio's stand-in for Conversations.

use std::sync::Arc;

use context_chat::ledger::{Kind, Ledger};
use context_chat::virgil::{VirgilSigner, generate_app_key};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use test_support::{
    API_SECRET, Issuer, Moto, TestKey, claims, early_in_a_minute, http_api_event, jwt_payload,
    put_parameter, put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_token-routes");
const APP_ID: &str = "0123456789abcdef0123456789abcdef";
const APP_KEY_ID: &str = "fedcba9876543210fedcba9876543210";

fn get(path: &str, query: &[(&str, &str)], bearer: Option<&str>) -> Value {
    let mut headers = json!({"host": "api.example.org"});
    if let Some(token) = bearer {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    http_api_event("GET", "api.example.org", path, query, headers, None)
}

fn body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_rest_routes_mint_for_a_bearer_record_limit_and_refuse_the_rest() {
    early_in_a_minute().await;
    let moto = Moto::start();
    let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
    let stack = unique("routes");
    let ssm = moto.ssm().await;
    put_settings(&ssm, &stack, &issuer.url(), API_SECRET).await;
    let app_key = generate_app_key().unwrap();
    for (name, value, secure) in [
        ("virgil/appId", APP_ID, false),
        ("virgil/appKeyId", APP_KEY_ID, false),
        ("virgil/appKey", app_key.expose_secret(), true),
        ("chat/tokensPerMinute", "4", false),
    ] {
        put_parameter(&ssm, &format!("/{stack}/{name}"), value, secure).await;
    }
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let ledger = Ledger::new(Arc::new(aws_ports::DynamoStore::new(
        dynamodb,
        stack.clone(),
    )));
    let (twilio, emulator, function) = moto.function_on_twilio(BINARY, &stack, Some(&stack)).await;
    let invoke = |event: Value| {
        let emulator = &emulator;
        async move { emulator.answer("token-routes", &event).await }
    };
    let token = key.token(&claims("alex", &["general"]));

    // Twilio: provisioned as createChatToken, the device in the endpoint id.
    let answer = invoke(get("/twilio-jwt", &[("deviceId", "phone-1")], Some(&token))).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["cache-control"], "no-store");
    let twilio_token = body(&answer)["twilioToken"].as_str().unwrap().to_owned();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let minted = jsonwebtoken::decode::<Value>(
        &twilio_token,
        &DecodingKey::from_secret(API_SECRET.as_bytes()),
        &validation,
    )
    .expect("signed with the API key secret from SSM")
    .claims;
    assert_eq!(minted["grants"]["identity"], "alex");
    assert_eq!(
        minted["grants"]["chat"]["endpoint_id"],
        "dachat:alex:phone-1"
    );
    assert_eq!(twilio.memberships("alex"), ["general"]);

    // Virgil: the token Virgil's SDK would make with the same key, for the same second.
    let answer = invoke(get("/virgil-jwt", &[], Some(&token))).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let virgil_token = body(&answer)["virgilToken"].as_str().unwrap().to_owned();
    let claims_of = jwt_payload(&virgil_token);
    assert_eq!(claims_of["iss"], format!("virgil-{APP_ID}"));
    assert_eq!(claims_of["sub"], "identity-alex");
    let signer = VirgilSigner::new(APP_ID, APP_KEY_ID, &app_key, 1200).unwrap();
    let iat = claims_of["iat"].as_u64().unwrap();
    assert_eq!(virgil_token, signer.mint("alex", iat).unwrap());

    // Both on record, the newest first.
    let records = ledger.of_identity("alex", 10).await.unwrap();
    let kinds: Vec<Kind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::Virgil, Kind::TwilioChat]);
    assert_eq!(records[1].device_id.as_deref(), Some("phone-1"));

    // No bearer, another scheme, a forged and an expired token: 401 with the challenge.
    let forged = TestKey::es256("k1").token(&claims("alex", &["general"]));
    let mut expired_claims = claims("alex", &["general"]);
    expired_claims["exp"] = json!(expired_claims["iat"].as_u64().unwrap() - 3600);
    expired_claims["iat"] = json!(expired_claims["iat"].as_u64().unwrap() - 7200);
    let expired = key.token(&expired_claims);
    // The errorType is the one GraphQL gives for the same token.
    let invalid = r#"Bearer error="invalid_token""#;
    for (path, bearer, challenge, error_type) in [
        ("/virgil-jwt", None, "Bearer", "AccessDenied"),
        ("/twilio-jwt", None, "Bearer", "AccessDenied"),
        (
            "/virgil-jwt",
            Some(forged.as_str()),
            invalid,
            "AccessDenied",
        ),
        (
            "/twilio-jwt",
            Some(expired.as_str()),
            invalid,
            "AccessDenied",
        ),
        ("/virgil-jwt", Some("not-a-jwt"), invalid, "BadRequest"),
    ] {
        let answer = invoke(get(path, &[], bearer)).await;
        assert_eq!(answer["statusCode"], 401, "{path} {answer}");
        assert_eq!(answer["headers"]["www-authenticate"], challenge, "{answer}");
        assert_eq!(body(&answer)["errorType"], error_type, "{answer}");
    }
    let mut basic = get("/virgil-jwt", &[], None);
    basic["headers"]["authorization"] = json!("Basic YWxleDpwdw==");
    assert_eq!(invoke(basic).await["statusCode"], 401);
    // A bad deviceId is the caller's mistake, not the token's.
    let answer = invoke(get("/twilio-jwt", &[("deviceId", "a b")], Some(&token))).await;
    assert_eq!(answer["statusCode"], 400, "{answer}");
    assert_eq!(body(&answer)["errorType"], "BadRequest");

    // Four a minute (tokensPerMinute in SSM), whichever the kind: the fifth is 429.
    for _ in 0..2 {
        assert_eq!(
            invoke(get("/virgil-jwt", &[], Some(&token))).await["statusCode"],
            200
        );
    }
    let answer = invoke(get("/twilio-jwt", &[], Some(&token))).await;
    assert_eq!(answer["statusCode"], 429, "{answer}");
    assert_eq!(body(&answer)["errorType"], "TooManyRequests");
    let retry = test_support::retry_after(&answer);
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(ledger.of_identity("alex", 10).await.unwrap().len(), 4);

    // The log pipe may lag the answers on a loaded machine.
    assert!(function.wait_for_output("virgil token issued", std::time::Duration::from_secs(10)));
    let logs = function.output();
    for secret in [
        app_key.expose_secret(),
        API_SECRET,
        &token,
        &twilio_token,
        &virgil_token,
    ] {
        assert!(!logs.contains(secret), "a secret or a token in the log");
    }
}
