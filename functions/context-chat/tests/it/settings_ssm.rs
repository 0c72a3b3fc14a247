//! Settings read from SSM through aws-sdk-ssm, against moto's server on loopback.

use std::time::Duration;

use context_chat::notifications::channels::email::settings::SendGridSettings;
use context_chat::settings::{Param, SettingsSource, reads};
use context_chat::{App, AppOptions, ErrorKind};
use secrecy::ExposeSecret;
use test_support::{Moto, put_parameter, ssm_client, unique};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const KEY: &str = "SKfedcba9876543210fedcba9876543210";
const SERVICE: &str = "IS00112233445566778899aabbccddeeff";

/// A stack named after `prefix` with every parameter in SSM but `skip`.
async fn stack_on_moto(prefix: &str, skip: Option<Param>) -> (Moto, aws_sdk_ssm::Client, String) {
    let moto = Moto::start();
    let ssm = moto.ssm().await;
    let stack = unique(prefix);
    put_all(&ssm, &stack, skip).await;
    (moto, ssm, stack)
}

async fn put_all(ssm: &aws_sdk_ssm::Client, stack: &str, skip: Option<Param>) {
    let values = [
        (Param::AccountSid, ACCOUNT),
        (Param::ApiKey, KEY),
        (Param::ApiSecret, "api-secret-value"),
        (Param::ChatServiceSid, SERVICE),
        (Param::LegacyAuthToken, "auth-token-value"),
        (Param::LinkSecret, "link-secret-value-of-some-length"),
        (
            Param::JwksUrl,
            "https://toolbox.example/.well-known/jwks.json",
        ),
        (Param::Issuer, "https://toolbox.example"),
    ];
    for (param, value) in values {
        if Some(param) != skip {
            put(ssm, stack, param, value).await;
        }
    }
}

/// One parameter of `stack`, secure when the product keeps it secret.
async fn put(ssm: &aws_sdk_ssm::Client, stack: &str, param: Param, value: &str) {
    put_parameter(ssm, &param.ssm_name(stack), value, param.is_secret()).await;
}

fn source(
    ssm: &aws_sdk_ssm::Client,
    stack: &str,
    reads: context_chat::settings::Reads,
) -> SettingsSource {
    SettingsSource::Ssm {
        client: ssm.clone(),
        reads,
        stack: stack.to_owned(),
    }
}

#[tokio::test]
async fn loads_by_name_more_than_one_call_holds_and_decrypts_secure_strings() {
    let (_moto, ssm, stack) = stack_on_moto("settings", None).await;
    // Of other products, and another stack's.
    for i in 0..5 {
        put_parameter(&ssm, &format!("/{stack}/chat/unrelated/{i}"), "x", false).await;
    }
    let other_stack = format!("/{stack}-other/twilio/apiKey");
    put_parameter(&ssm, &other_stack, "SKnot-this-stack", false).await;
    put(&ssm, &stack, Param::SendGridApiKey, "SG.key").await;
    put(&ssm, &stack, Param::SendGridDomain, "example.org").await;

    // Every section: more names than one GetParameters call takes (10).
    assert!(reads::EVERYTHING.params().count() > 10);
    let settings = source(&ssm, &stack, reads::EVERYTHING)
        .load()
        .await
        .unwrap();
    let twilio = settings.twilio.as_ref().unwrap();
    assert_eq!(twilio.account_sid, ACCOUNT);
    assert_eq!(twilio.api_key_sid, KEY);
    assert_eq!(twilio.api_secret.expose_secret(), "api-secret-value");
    assert_eq!(twilio.chat_service_sid, SERVICE);
    let auth_token = settings
        .webhook_auth_token
        .as_ref()
        .map(|s| s.expose_secret());
    assert_eq!(auth_token, Some("auth-token-value"));
    assert_eq!(
        settings.link_secret.as_ref().unwrap().expose_secret(),
        "link-secret-value-of-some-length"
    );
    assert_eq!(
        SendGridSettings::of(&settings)
            .for_operator()
            .unwrap()
            .domain,
        "example.org"
    );
    let chat = settings.chat.as_ref().unwrap();
    assert_eq!(
        chat.jwks_url.as_str(),
        "https://toolbox.example/.well-known/jwks.json"
    );
    assert_eq!(chat.issuer.as_deref(), Some("https://toolbox.example"));
    assert_eq!(chat.audience, None);
}

#[tokio::test]
async fn each_function_reads_only_its_secrets_and_the_auth_token_has_a_place_of_its_own() {
    let (_moto, ssm, stack) = stack_on_moto("reads", None).await;

    // verify-token holds no Twilio secret, create-chat-token not the auth token.
    let verify = source(&ssm, &stack, reads::VERIFY_TOKEN)
        .load()
        .await
        .unwrap();
    assert!(verify.twilio.is_none() && verify.webhook_auth_token.is_none());
    assert!(verify.link_secret.is_none());
    let create = source(&ssm, &stack, reads::CREATE_CHAT_TOKEN)
        .load()
        .await
        .unwrap();
    assert!(create.twilio.is_some() && create.webhook_auth_token.is_none());
    for (function, reads) in reads::BY_FUNCTION {
        let names: Vec<_> = reads.params().collect();
        assert_eq!(
            names.contains(&Param::WebhookAuthToken),
            function == "twilio-webhook",
            "{function}"
        );
        assert_eq!(
            names.contains(&Param::LegacyAuthToken),
            function == "twilio-webhook",
            "{function}"
        );
        if function == "verify-token" {
            assert!(names.iter().all(|p| !p.is_secret()), "{names:?}");
        }
    }

    // verify-token needs nothing of Twilio's to be there at all.
    let only_chat = unique("only-chat");
    put(
        &ssm,
        &only_chat,
        Param::JwksUrl,
        "https://toolbox.example/.well-known/jwks.json",
    )
    .await;
    assert!(
        source(&ssm, &only_chat, reads::VERIFY_TOKEN)
            .load()
            .await
            .is_ok()
    );

    // The webhook reads the old place until the new one is set, then the new one.
    let webhook = source(&ssm, &stack, reads::TWILIO_WEBHOOK);
    let token = webhook.load().await.unwrap().webhook_auth_token.unwrap();
    assert_eq!(token.expose_secret(), "auth-token-value");
    put(&ssm, &stack, Param::WebhookAuthToken, "rotated-token").await;
    let token = webhook.load().await.unwrap().webhook_auth_token.unwrap();
    assert_eq!(token.expose_secret(), "rotated-token");
}

#[tokio::test]
async fn a_missing_parameter_is_entity_not_found_naming_it() {
    let (_moto, ssm, stack) = stack_on_moto("missing", Some(Param::ApiSecret)).await;
    let err = source(&ssm, &stack, reads::CREATE_CHAT_TOKEN)
        .load()
        .await
        .unwrap_err();
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
    let err = source(&ssm, "nowhere", reads::CREATE_CHAT_TOKEN)
        .load()
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(err.message.contains("/nowhere/"), "{}", err.message);
}

/// The settings once `pred` holds for them, asked for every 20 ms (at most 10 s).
async fn eventually(
    app: &App,
    pred: impl Fn(&context_chat::settings_holder::Configured) -> bool,
) -> std::sync::Arc<context_chat::settings_holder::Configured> {
    for _ in 0..500 {
        let configured = app.settings().current().await.unwrap();
        if pred(&configured) {
            return configured;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the settings never changed");
}

#[tokio::test]
async fn the_app_reads_settings_once_per_maximum_age_and_keeps_them_when_ssm_fails() {
    let (_moto, ssm, stack) = stack_on_moto("cached", None).await;
    let options = AppOptions {
        settings_max_age: Duration::from_millis(300),
        settings_retry: Duration::from_millis(300),
        ..AppOptions::default()
    };
    let app = App::new(source(&ssm, &stack, reads::CREATE_CHAT_TOKEN), options);
    let first = app.settings().current().await.unwrap();
    assert_eq!(
        first.settings.chat.as_ref().unwrap().issuer.as_deref(),
        Some("https://toolbox.example")
    );

    // A change is not seen within the maximum age...
    put(&ssm, &stack, Param::Issuer, "https://new.example").await;
    let again = app.settings().current().await.unwrap();
    assert_eq!(
        again.settings.chat.as_ref().unwrap().issuer.as_deref(),
        Some("https://toolbox.example")
    );
    // ...and is seen after it (reloaded in the background: the call that finds the settings
    // due still gets the previous ones), with a new verifier because its settings changed.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let reloaded = eventually(&app, |c| {
        c.settings.chat.as_ref().unwrap().issuer.as_deref() == Some("https://new.example")
    })
    .await;
    assert!(!std::sync::Arc::ptr_eq(
        first.verifier().unwrap(),
        reloaded.verifier().unwrap()
    ));

    // A reload that fails keeps the last good settings.
    ssm.delete_parameter()
        .name(Param::ApiSecret.ssm_name(&stack))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = app.settings().current().await.unwrap();
    // The failed reload in the background: the next calls still get the last good ones.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kept = app.settings().current().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&before, &kept));
    assert_eq!(
        kept.settings
            .twilio
            .as_ref()
            .unwrap()
            .api_secret
            .expose_secret(),
        "api-secret-value"
    );
    assert!(std::sync::Arc::ptr_eq(
        kept.verifier().unwrap(),
        reloaded.verifier().unwrap()
    ));
}

/// Issue 17: once loaded, no request waits for settings. With SSM hanging (every request
/// held at a proxy in front of moto), calls after the maximum age still answer at once with
/// the previous settings while one reload waits; once SSM answers, the new ones arrive.
#[tokio::test]
async fn no_call_waits_for_a_reload_after_the_first_load() {
    let moto = Moto::start();
    let proxy = test_support::CountingProxy::start(moto.url()).await;
    let ssm = moto.ssm().await;
    let stack = unique("background");
    put_all(&ssm, &stack, None).await;
    let options = AppOptions {
        settings_max_age: Duration::from_millis(200),
        ..AppOptions::default()
    };
    let app = App::new(
        source(
            &ssm_client(&proxy.url()).await,
            &stack,
            reads::CREATE_CHAT_TOKEN,
        ),
        options,
    );
    let first = app.settings().current().await.unwrap();
    let loads = proxy.requests();
    assert!(loads >= 1);

    proxy.hold();
    put(&ssm, &stack, Param::Issuer, "https://new.example").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The call that finds them due answers with the previous ones and starts a reload,
    // which hangs at the proxy.
    let due = tokio::time::timeout(Duration::from_secs(5), app.settings().current())
        .await
        .expect("the call that found the settings due waited for SSM")
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&due, &first));
    for _ in 0..500 {
        if proxy.requests() > loads {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Many calls while that reload hangs: each answers (a generous bound, not a timing:
    // before this issue the first of them waited for SSM, here forever).
    for _ in 0..50 {
        let now = tokio::time::timeout(Duration::from_secs(5), app.settings().current())
            .await
            .expect("a call waited for the reload")
            .unwrap();
        assert!(std::sync::Arc::ptr_eq(&now, &first));
    }
    let during = proxy.requests() - loads;
    assert!(
        (1..=loads).contains(&during),
        "one reload, held at the proxy: {during} requests"
    );

    proxy.release();
    let reloaded = eventually(&app, |c| {
        c.settings.chat.as_ref().unwrap().issuer.as_deref() == Some("https://new.example")
    })
    .await;
    assert!(!std::sync::Arc::ptr_eq(&reloaded, &first));
}
