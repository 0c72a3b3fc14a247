//! The platform-api function under cargo lambda's local runtime: its settings in SSM and its
//! table on moto, the platform's JWKS on loopback, Twilio's stand-in; events shaped as
//! AppSync sends them in its OpenID Connect mode (the token in `authorization`).

use std::path::Path;

use context_chat::revocations::Revocation;
use context_chat::store::{self, Key};
use serde_json::{Value, json};
use test_support::{
    API_SECRET, Emulator, Function, Issuer, Moto, TestKey, TwilioStandIn, appsync_event, jwks, now,
    put_parameter, put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_platform-api");
const ISSUER: &str = "https://tenant.eu.auth0.com/";
const AUDIENCE: &str = "https://chat.example.org/platform";

/// `parent.field` as AppSync hands it over after checking `token` in OIDC mode.
fn event(parent: &str, field: &str, arguments: Value, token: Option<&str>) -> Value {
    let mut event = appsync_event(parent, field, arguments);
    if let Some(token) = token {
        event["request"]["headers"]["authorization"] = json!(token);
        event["identity"] = json!({
            "claims": {"iss": ISSUER, "sub": "toolbox@clients", "aud": AUDIENCE},
            "issuer": ISSUER,
            "sub": "toolbox@clients",
        });
    }
    event
}

fn access_token(key: &TestKey, scope: &str, audience: &str) -> String {
    let now = now();
    key.token(&json!({
        "iss": ISSUER, "aud": [audience, "https://tenant.eu.auth0.com/userinfo"],
        "sub": "toolbox@clients", "scope": scope, "iat": now, "exp": now + 600,
    }))
}

#[tokio::test]
async fn the_platform_fields_act_for_a_token_with_the_scope_and_for_no_other() {
    let moto = Moto::start();
    let platform_key = TestKey::rs256("idp-1");
    let issuer = Issuer::start(jwks(&[&platform_key])).await;
    let context_issuer = Issuer::start(jwks(&[&TestKey::es256("ctx")])).await;
    let stack = unique("platform");
    let ssm = moto.ssm().await;
    put_settings(&ssm, &stack, &context_issuer.url(), API_SECRET).await;
    for (name, value) in [
        ("platform/issuer", ISSUER.to_owned()),
        ("platform/audience", AUDIENCE.to_owned()),
        ("platform/jwks.json", issuer.url()),
    ] {
        put_parameter(&ssm, &format!("/{stack}/{name}"), &value, false).await;
    }
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let twilio = TwilioStandIn::start().await;
    let emulator = Emulator::start();
    let mut env = moto.env();
    env.push(("STACK_NAME", stack.clone()));
    env.push(("NOTIFICATIONS_TABLE", stack.clone()));
    env.push(("TWILIO_API_BASE_URL", twilio.base_url()));
    let function = Function::start(Path::new(BINARY), "platform-api", &emulator, &env);
    let admin = access_token(&platform_key, "chat:read chat:admin", AUDIENCE);

    let synced = emulator
        .invoke(
            "platform-api",
            &event(
                "Mutation",
                "syncIdentity",
                json!({"identity": "alex", "contexts": ["general", "random"]}),
                Some(&admin),
            ),
        )
        .await
        .value();
    assert_eq!(synced, json!({"joined": ["general", "random"], "left": []}));
    assert_eq!(twilio.memberships("alex"), ["general", "random"]);
    let contexts = emulator
        .invoke(
            "platform-api",
            &event(
                "Query",
                "identityContexts",
                json!({"identity": "alex"}),
                Some(&admin),
            ),
        )
        .await
        .value();
    assert_eq!(contexts, json!(["general", "random"]));

    // Refused, and nothing changes: no token, a read-only token for a mutation, a token for
    // another audience (AppSync checks only the issuer's signature and expiry).
    let read_only = access_token(&platform_key, "chat:read", AUDIENCE);
    let elsewhere = access_token(&platform_key, "chat:admin", "https://other.example.org/");
    for token in [None, Some(read_only.as_str()), Some(elsewhere.as_str())] {
        let (error_type, message) = emulator
            .invoke(
                "platform-api",
                &event(
                    "Mutation",
                    "revokeIdentity",
                    json!({"identity": "alex"}),
                    token,
                ),
            )
            .await
            .error();
        assert_eq!(error_type, "AccessDenied", "{token:?}: {message}");
    }
    assert_eq!(twilio.memberships("alex"), ["general", "random"]);

    let revoked = emulator
        .invoke(
            "platform-api",
            &event(
                "Mutation",
                "revokeIdentity",
                json!({"identity": "alex"}),
                Some(&admin),
            ),
        )
        .await
        .value();
    assert_eq!(revoked["left"], json!(["general", "random"]));
    assert!(twilio.memberships("alex").is_empty());
    // The revocation is in the table, where every token function reads it.
    let table = aws_ports::DynamoStore::new(dynamodb, stack);
    let recorded = store::read::<Revocation>(&table, &Key::Revocation("alex".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        json!(recorded.value.revoked_before),
        revoked["revokedBefore"]
    );

    let (error_type, _) = emulator
        .invoke(
            "platform-api",
            &event("Query", "verifyToken", json!({"token": "x"}), Some(&admin)),
        )
        .await
        .error();
    assert_eq!(error_type, "BadRequest");
    let output = function.output();
    for token in [&admin, &read_only, &elsewhere] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!output.contains(signature), "a token in the function's log");
    }
}
