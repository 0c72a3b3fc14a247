//! Settings read from SSM through aws-sdk-ssm, against moto's server on loopback.

use std::time::Duration;

use context_chat::settings::{Param, SettingsSource};
use context_chat::{App, AppOptions, ErrorKind};
use secrecy::ExposeSecret;
use test_support::{Moto, put_parameter, ssm_client, unique};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const KEY: &str = "SKfedcba9876543210fedcba9876543210";
const SERVICE: &str = "IS00112233445566778899aabbccddeeff";

async fn put_all(ssm: &aws_sdk_ssm::Client, stack: &str, skip: Option<Param>) {
    let values = [
        (Param::AccountSid, ACCOUNT),
        (Param::ApiKey, KEY),
        (Param::ApiSecret, "api-secret-value"),
        (Param::ChatServiceSid, SERVICE),
        (Param::AuthToken, "auth-token-value"),
        (
            Param::JwksUrl,
            "https://toolbox.example/.well-known/jwks.json",
        ),
        (Param::Issuer, "https://toolbox.example"),
    ];
    for (param, value) in values {
        if Some(param) != skip {
            put_parameter(ssm, &param.ssm_name(stack), value, param.is_secret()).await;
        }
    }
}

#[tokio::test]
async fn loads_every_page_and_decrypts_secure_strings() {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique("settings");
    put_all(&ssm, &stack, None).await;
    // More parameters than one page holds (10), nested, and of other products.
    for i in 0..25 {
        put_parameter(&ssm, &format!("/{stack}/chat/unrelated/{i}"), "x", false).await;
    }
    put_parameter(
        &ssm,
        &format!("/{stack}-other/twilio/apiKey"),
        "SKnot-this-stack",
        false,
    )
    .await;

    let source = SettingsSource::Ssm {
        client: ssm,
        paths: context_chat::settings::TOKEN_PATHS,
        stack: stack.clone(),
    };
    let settings = source.load().await.unwrap();
    assert_eq!(settings.twilio.account_sid, ACCOUNT);
    assert_eq!(settings.twilio.api_key_sid, KEY);
    assert_eq!(
        settings.twilio.api_secret.expose_secret(),
        "api-secret-value"
    );
    assert_eq!(
        settings.twilio.auth_token.as_ref().unwrap().expose_secret(),
        "auth-token-value"
    );
    assert_eq!(settings.twilio.chat_service_sid, SERVICE);
    assert_eq!(
        settings.chat.jwks_url.as_str(),
        "https://toolbox.example/.well-known/jwks.json"
    );
    assert_eq!(
        settings.chat.issuer.as_deref(),
        Some("https://toolbox.example")
    );
    assert_eq!(settings.chat.audience, None);
}

#[tokio::test]
async fn a_missing_parameter_is_entity_not_found_naming_it() {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique("missing");
    put_all(&ssm, &stack, Some(Param::ApiSecret)).await;
    let source = SettingsSource::Ssm {
        client: ssm,
        paths: context_chat::settings::TOKEN_PATHS,
        stack: stack.clone(),
    };
    let err = source.load().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::EntityNotFound);
    assert!(
        err.message.contains(&format!("/{stack}/twilio/apiSecret")),
        "{}",
        err.message
    );
    // No value of any other parameter leaks into the message.
    assert!(!err.message.contains("auth-token-value"));
}

#[tokio::test]
async fn unreachable_ssm_is_an_internal_error() {
    let port = test_support::free_port();
    let ssm = ssm_client(&format!("http://127.0.0.1:{port}")).await;
    let source = SettingsSource::Ssm {
        client: ssm,
        paths: context_chat::settings::TOKEN_PATHS,
        stack: "nowhere".into(),
    };
    let err = source.load().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(err.message.contains("/nowhere/twilio"), "{}", err.message);
}

#[tokio::test]
async fn the_app_reads_settings_once_per_maximum_age_and_keeps_them_when_ssm_fails() {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique("cached");
    put_all(&ssm, &stack, None).await;
    let options = AppOptions {
        settings_max_age: Duration::from_millis(300),
        settings_retry: Duration::from_millis(300),
        ..AppOptions::default()
    };
    let app = App::new(
        SettingsSource::Ssm {
            client: ssm.clone(),
            paths: context_chat::settings::TOKEN_PATHS,
            stack: stack.clone(),
        },
        options,
    );
    let first = app.settings().current().await.unwrap();
    assert_eq!(
        first.settings.chat.issuer.as_deref(),
        Some("https://toolbox.example")
    );

    // A change is not seen within the maximum age...
    put_parameter(
        &ssm,
        &Param::Issuer.ssm_name(&stack),
        "https://new.example",
        false,
    )
    .await;
    let again = app.settings().current().await.unwrap();
    assert_eq!(
        again.settings.chat.issuer.as_deref(),
        Some("https://toolbox.example")
    );
    // ...and is seen after it, with a new verifier because its settings changed.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let reloaded = app.settings().current().await.unwrap();
    assert_eq!(
        reloaded.settings.chat.issuer.as_deref(),
        Some("https://new.example")
    );
    assert!(!std::sync::Arc::ptr_eq(&first.verifier, &reloaded.verifier));

    // A reload that fails keeps the last good settings.
    ssm.delete_parameter()
        .name(Param::ApiSecret.ssm_name(&stack))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let kept = app.settings().current().await.unwrap();
    assert_eq!(
        kept.settings.twilio.api_secret.expose_secret(),
        "api-secret-value"
    );
    assert!(std::sync::Arc::ptr_eq(&kept.verifier, &reloaded.verifier));
}
