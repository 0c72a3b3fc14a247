//! Whole GraphQL request bodies through the schema `chatctl serve` answers with, on an app
//! whose issuer (and platform issuer) is the fixed key, served on loopback. An input's
//! `$TOKEN` becomes a valid context token (alex; general, random) and `$PLATFORM` a valid
//! platform access token, so the fuzzer reaches the resolvers' work, not only their doors.

use std::sync::{Arc, OnceLock};

use async_graphql::Request;
use context_chat::graphql::{ChatSchema, RequestAuth, schema};
use context_chat::settings::{PlatformSettings, Settings, SettingsSource, TwilioSettings};
use context_chat::{App, AppOptions, ErrorKind};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::{PLATFORM_ISSUER, jwks_document, runtime, signed_token};

fn schema_on_loopback() -> &'static ChatSchema {
    static SCHEMA: OnceLock<ChatSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let jwks_url = runtime().block_on(serve_jwks());
        let mut settings = Settings {
            twilio: Some(TwilioSettings {
                account_sid: "AC0123456789abcdef0123456789abcdef".into(),
                api_key_sid: "SKfedcba9876543210fedcba9876543210".into(),
                api_secret: SecretString::from("fuzz-secret"),
                chat_service_sid: "IS00112233445566778899aabbccddeeff".into(),
                access_token_ttl_secs: 3600,
                // No Twilio: provisioning is off, as in local mode.
                api_base_url: None,
                ownership: Default::default(),
                push_credential_sid: None,
            }),
            platform: Some(PlatformSettings {
                issuer: PLATFORM_ISSUER.into(),
                audience: None,
                jwks_url: jwks_url.clone(),
            }),
            ..Settings::token_path(jwks_url, None)
        };
        // Its tokens are signed once and live through a long fuzzing run (30 days).
        if let Some(chat) = settings.chat.as_mut() {
            chat.max_token_lifetime_secs = context_chat::settings::MAX_MAX_TOKEN_LIFETIME_SECS;
        }
        let app = App::new(
            SettingsSource::Fixed(Box::new(settings)),
            AppOptions::default(),
        );
        schema(Arc::new(app))
    })
}

/// The fixed key set on `http://127.0.0.1:<port>/jwks.json`, served by the runtime's
/// tasks while a request runs.
async fn serve_jwks() -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let body = jwks_document();
    let routes = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes).await;
    });
    format!("http://127.0.0.1:{port}/jwks.json")
        .parse()
        .expect("a URL")
}

fn tokens() -> &'static (String, String) {
    static TOKENS: OnceLock<(String, String)> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let now = context_chat::context_token::now_unix();
        let context = signed_token(&json!({
            "sub": "alex", "contexts": ["general", "random"], "iat": now, "exp": now + 30 * 86_400
        }));
        let platform = signed_token(&json!({
            "iss": PLATFORM_ISSUER, "sub": "fuzz-client", "scope": "chat:read chat:admin",
            "iat": now, "exp": now + 30 * 86_400
        }));
        (context, platform)
    })
}

/// Mode byte even: with the API key (the widget); odd: with a platform access token only.
/// The answer, when the body was a GraphQL request.
pub fn graphql(data: &[u8]) -> Option<Value> {
    let (&mode, body) = data.split_first()?;
    let (context, platform) = tokens();
    let body = String::from_utf8_lossy(body)
        .replace("$TOKEN", context)
        .replace("$PLATFORM", platform);
    let request = serde_json::from_str::<Request>(&body).ok()?;
    let auth = if mode % 2 == 0 {
        RequestAuth {
            api_key: true,
            authorization: None,
        }
    } else {
        RequestAuth {
            api_key: false,
            authorization: Some(format!("Bearer {platform}")),
        }
    };
    let schema = schema_on_loopback();
    let response = runtime().block_on(schema.execute(request.data(auth)));
    let mut answer = serde_json::to_value(&response).expect("a response serializes");
    // As `chatctl serve` answers it.
    context_chat::graphql::appsync_error_shape(&mut answer);
    for error in answer["errors"].as_array().into_iter().flatten() {
        // Resolver errors carry a contract errorType (copied from their extensions);
        // async-graphql's own (parse, validation) become BadRequest at the door.
        let kind = error["errorType"].as_str().unwrap_or_default();
        assert!(is_known_error_type(kind), "{kind}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.contains(context.as_str()) && !message.contains(platform.as_str()));
    }
    Some(answer)
}

/// The contract's `errorType`s, and AppSync's own two for authorization: a request without
/// the API key (`UnauthorizedException`), an API-key request to a field of the platform's
/// authorization mode (`Unauthorized`).
fn is_known_error_type(kind: &str) -> bool {
    ErrorKind::from_name(kind).is_some()
        || kind == "UnauthorizedException"
        || kind == "Unauthorized"
}
