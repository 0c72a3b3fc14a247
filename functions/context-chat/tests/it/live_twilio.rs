//! Opt-in: provisioning against real Twilio. Skipped unless `TWILIO_LIVE_TEST=1` and the
//! credentials of a Conversation Service you may write to are in the environment:
//! `TWILIO_ACCOUNT_SID`, `TWILIO_API_KEY`, `TWILIO_API_SECRET`, `TWILIO_CHAT_SERVICE_SID`.
//!
//! It makes one user and two conversations with names unique to the run, checks that the
//! memberships follow the token, and deletes what it made.
//!
//! `TWILIO_LIVE_TEST=1 cargo nextest run -p context-chat --test it live_twilio --no-capture`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use context_chat::settings::{Param, SettingsSource};
use context_chat::twilio::conversations::ConversationsApi;
use context_chat::twilio::rest::{RestClient, RetryPolicy};
use context_chat::{App, AppOptions};
use secrecy::ExposeSecret;
use test_support::{Issuer, TestKey, claims};

fn live_settings() -> Option<HashMap<String, String>> {
    if std::env::var("TWILIO_LIVE_TEST").ok().as_deref() != Some("1") {
        eprintln!("skipped: set TWILIO_LIVE_TEST=1 and the TWILIO_* credentials to run it");
        return None;
    }
    let mut env = HashMap::new();
    for p in [
        Param::AccountSid,
        Param::ApiKey,
        Param::ApiSecret,
        Param::ChatServiceSid,
        Param::ApiBaseUrl,
    ] {
        if let Ok(v) = std::env::var(p.env_var()) {
            env.insert(p.env_var().to_owned(), v);
        }
    }
    Some(env)
}

#[tokio::test]
async fn memberships_follow_the_token_on_real_twilio() {
    let Some(mut env) = live_settings() else {
        return;
    };
    let (key, issuer) = Issuer::with(TestKey::es256("live")).await;
    env.insert("CHAT_JWKS_URL".into(), issuer.url());
    let source = SettingsSource::env_vars(env.clone());
    let twilio = source.load_twilio().await.expect("TWILIO_* settings");
    let app = App::new(source, AppOptions::default());

    let run = format!("cc-live-{}", test_support::now());
    let (a, b) = (format!("{run}-a"), format!("{run}-b"));
    let identity = format!("{run}-user");

    let outcome = async {
        app.tokens()
            .create_chat_token("live", &key.token(&claims(&identity, &[&a, &b])))
            .await?;
        let api = ConversationsApi::new(RestClient::new(
            RestClient::http_client(),
            twilio.api_base_url.as_ref().unwrap(),
            &twilio.chat_service_sid,
            &twilio.api_key_sid,
            &twilio.api_secret,
            RetryPolicy::default(),
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        let names = |list: Option<Vec<context_chat::twilio::conversations::UserConversation>>| {
            let mut names: Vec<String> = list
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| c.unique_name)
                .collect();
            names.sort();
            names
        };
        let first = names(api.user_conversations(&identity, deadline).await.unwrap());
        assert_eq!(first, [a.clone(), b.clone()]);

        // Another process: it does not remember the first token's contexts.
        let other = App::new(SettingsSource::env_vars(env.clone()), AppOptions::default());
        other
            .tokens()
            .create_chat_token("live", &key.token(&claims(&identity, &[&a])))
            .await?;
        let second = names(api.user_conversations(&identity, deadline).await.unwrap());
        assert_eq!(second, std::slice::from_ref(&a));
        Ok::<_, context_chat::ChatError>(())
    }
    .await;

    // Clean up whatever was made, even after a failure.
    let http = reqwest::Client::new();
    let base = twilio.api_base_url.clone().unwrap();
    for path in [
        format!("Conversations/{a}"),
        format!("Conversations/{b}"),
        format!("Users/{identity}"),
    ] {
        let url = format!("{}v1/Services/{}/{path}", base, twilio.chat_service_sid);
        let _ = http
            .delete(url)
            .basic_auth(&twilio.api_key_sid, Some(twilio.api_secret.expose_secret()))
            .send()
            .await;
    }
    outcome.expect("provisioning on real Twilio");
}
