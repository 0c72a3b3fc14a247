//! createChatToken makes the user's Conversations memberships match its token before it
//! answers: against the stateful Twilio stand-in on loopback, every request checked by
//! Prism against Twilio's OpenAPI spec.

use std::sync::Arc;
use std::time::Duration;

use context_chat::settings::SettingsSource;
use context_chat::twilio::provisioning::{MANAGED_BY, ProvisioningOptions};
use context_chat::twilio::rest::RetryPolicy;
use context_chat::{App, AppOptions, ErrorKind};
use reqwest::Method;
use test_support::{Fault, Issuer, TestKey, TwilioStandIn, claims};

/// A budget no loaded machine runs out, for the tests that expect success.
const AMPLE: Duration = Duration::from_secs(30);

/// Fast retries, so that tests of giving up do not wait for production's budget.
fn options(budget: Duration) -> AppOptions {
    AppOptions {
        twilio: RetryPolicy {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            // A loaded CI machine (Prism answers each request first) can stall one try for
            // seconds; the tests of giving up set a budget below this.
            attempt_timeout: Duration::from_secs(10),
            max_in_flight: 32,
        },
        provisioning: ProvisioningOptions {
            budget,
            ..ProvisioningOptions::default()
        },
        ..AppOptions::default()
    }
}

fn env(twilio: &TwilioStandIn, issuer: &Issuer) -> std::collections::HashMap<String, String> {
    let mut env: std::collections::HashMap<String, String> = twilio
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.insert("CHAT_JWKS_URL".into(), issuer.url());
    env
}

fn app(twilio: &TwilioStandIn, issuer: &Issuer, options: AppOptions) -> App {
    App::new(SettingsSource::env_vars(env(twilio, issuer)), options)
}

struct World {
    twilio: TwilioStandIn,
    issuer: Issuer,
    key: TestKey,
}

impl World {
    async fn new() -> Self {
        let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
        Self {
            twilio: TwilioStandIn::start().await,
            issuer,
            key,
        }
    }

    fn app(&self) -> App {
        app(&self.twilio, &self.issuer, options(AMPLE))
    }

    fn env(&self) -> std::collections::HashMap<String, String> {
        env(&self.twilio, &self.issuer)
    }

    fn token(&self, identity: &str, contexts: &[&str]) -> String {
        self.key.token(&claims(identity, contexts))
    }

    /// createChatToken through `app` for a fresh context token, which must succeed.
    async fn chat_token(&self, app: &App, identity: &str, contexts: &[&str]) {
        app.tokens()
            .create_chat_token("d", &self.token(identity, contexts))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_first_token_makes_the_user_its_conversations_and_memberships_in_two_round_trips() {
    let w = World::new().await;
    // Round trips are counted as the token-path bench counts them: each request is answered
    // after a fixed time, so requests sent together overlap and sequential ones do not.
    w.twilio.set_fixed_latency(Duration::from_millis(20));
    let app = w.app();
    app.settings().current().await.unwrap();
    let token = w.token("alex", &["general", "SHIPMENT-42", "GROUP-PRIVATE-7"]);

    app.tokens()
        .create_chat_token("device-1", &token)
        .await
        .unwrap();

    assert_eq!(w.twilio.user_identities(), ["alex"]);
    let mut names = w.twilio.conversation_names();
    names.sort();
    assert_eq!(names, ["GROUP-PRIVATE-7", "SHIPMENT-42", "general"]);
    for name in &names {
        assert_eq!(w.twilio.participants(name), ["alex"], "{name}");
        let attributes = w.twilio.conversation_attributes(name).unwrap();
        assert_eq!(attributes["managedBy"], MANAGED_BY);
        assert_eq!(attributes["context"], name.as_str());
    }
    // Issue 17: look, then create each conversation with alex in it (Twilio makes the user).
    assert_eq!(
        w.twilio.sequential_round_trips(),
        2,
        "{:#?}",
        w.twilio.requests()
    );
    assert_eq!(
        w.twilio.request_count(),
        7,
        "1 list + 3 lookups + 3 creates"
    );

    // The same user again: this process remembers, and Twilio is not asked.
    let before = w.twilio.request_count();
    app.tokens()
        .create_chat_token(
            "device-2",
            &w.token("alex", &["SHIPMENT-42", "general", "GROUP-PRIVATE-7"]),
        )
        .await
        .unwrap();
    assert_eq!(w.twilio.request_count(), before);

    // Another process (a fresh Lambda instance) checks with one round trip and changes nothing.
    w.twilio.clear_log();
    w.app()
        .tokens()
        .create_chat_token("device-3", &token)
        .await
        .unwrap();
    assert_eq!(w.twilio.sequential_round_trips(), 1);
    assert!(w.twilio.requests().iter().all(|r| r.method == Method::GET));
    assert_eq!(
        w.twilio.memberships("alex"),
        ["GROUP-PRIVATE-7", "SHIPMENT-42", "general"]
    );
}

/// Issue 17: a first-time user whose contexts' conversations exist (others are in them):
/// look, then join all three at once, Twilio making the user on the first.
#[tokio::test]
async fn a_first_token_for_existing_conversations_joins_them_in_two_round_trips() {
    let w = World::new().await;
    let contexts = ["general", "SHIPMENT-42", "GROUP-PRIVATE-7"];
    w.chat_token(&w.app(), "sam", &contexts).await;
    w.twilio.set_fixed_latency(Duration::from_millis(20));
    w.twilio.clear_log();

    w.chat_token(&w.app(), "alex", &contexts).await;

    assert_eq!(
        w.twilio.sequential_round_trips(),
        2,
        "{:#?}",
        w.twilio.requests()
    );
    assert_eq!(w.twilio.request_count(), 7, "1 list + 3 lookups + 3 joins");
    assert_eq!(w.twilio.user_identities(), ["sam", "alex"]);
    for name in contexts {
        assert_eq!(w.twilio.participants(name), ["sam", "alex"], "{name}");
    }
}

#[tokio::test]
async fn twenty_concurrent_first_calls_end_with_one_user_one_conversation_one_participant() {
    let w = World::new().await;
    // Requests overlap as over the internet, and creates take a while, so the racers meet
    // Twilio's "already exists" and "conflicting modification" answers.
    w.twilio.set_latency(Duration::from_millis(30));
    w.twilio.set_create_window(Duration::from_millis(40));
    let token = w.token("newbie", &["SHIPMENT-7"]);

    // Twenty processes, as twenty Lambda instances would be.
    let apps: Vec<Arc<App>> = (0..20).map(|_| Arc::new(w.app())).collect();
    let calls = apps.iter().map(|app| {
        let app = app.clone();
        let token = token.clone();
        tokio::spawn(async move { app.tokens().create_chat_token("d", &token).await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(w.twilio.user_identities(), ["newbie"]);
    assert_eq!(w.twilio.conversation_names(), ["SHIPMENT-7"]);
    assert_eq!(w.twilio.participants("SHIPMENT-7"), ["newbie"]);
    let conflicts = w
        .twilio
        .requests()
        .iter()
        .filter(|r| r.status == 409)
        .count();
    assert!(
        conflicts > 0,
        "the racers never met: the test proves nothing"
    );

    // Twenty concurrent calls in one process share one provisioning.
    let token = w.token("second", &["SHIPMENT-8"]);
    let app = Arc::new(w.app());
    app.settings().current().await.unwrap();
    w.twilio.clear_log();
    let calls = (0..20).map(|_| {
        let app = app.clone();
        let token = token.clone();
        tokio::spawn(async move { app.tokens().create_chat_token("d", &token).await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(w.twilio.participants("SHIPMENT-8"), ["second"]);
    assert!(w.twilio.requests().iter().all(|r| r.status != 409));
    let user_lists = w
        .twilio
        .requests()
        .iter()
        .filter(|r| r.path == "Users/second/Conversations")
        .count();
    assert_eq!(user_lists, 1);
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_twilio_asks_then_the_call_succeeds() {
    let w = World::new().await;
    w.twilio.fail(
        Fault::new(429, 20429)
            .on(Method::POST, "/ConversationWithParticipants")
            .retry_after(1),
    );
    let app = w.app();

    w.chat_token(&app, "alex", &["general"]).await;

    assert_eq!(w.twilio.user_identities(), ["alex"]);
    let creates: Vec<_> = w
        .twilio
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::POST && r.path == "ConversationWithParticipants")
        .collect();
    assert_eq!(
        creates.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 201]
    );
    // Retry-After: 1 was honoured (a lower bound, not a timing).
    assert!(creates[1].started.duration_since(creates[0].ended) >= Duration::from_secs(1));
    assert_eq!(w.twilio.participants("general"), ["alex"]);
}

#[tokio::test]
async fn server_errors_until_the_retries_run_out_are_an_internal_error_naming_the_step() {
    let w = World::new().await;
    // The conversation exists (sam is in it), so alex joins it by adding a participant.
    w.chat_token(&w.app(), "sam", &["general"]).await;
    w.twilio.fail(
        Fault::new(503, 20503)
            .on(Method::POST, "/Participants")
            .times(usize::MAX),
    );
    // Room for several retries even when a loaded CI machine slows the earlier rounds.
    let app = app(&w.twilio, &w.issuer, options(Duration::from_millis(2000)));
    let token = w.token("alex", &["general"]);

    let err = app
        .tokens()
        .create_chat_token("d", &token)
        .await
        .unwrap_err();

    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        err.message
            .contains("adding alex to the conversation of context general"),
        "{}",
        err.message
    );
    assert!(err.message.contains("HTTP 503"), "{}", err.message);
    assert!(!err.message.contains(test_support::API_SECRET));
    let attempts = w
        .twilio
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/Participants") && r.method == Method::POST)
        .count();
    assert!(attempts > 2, "retried only {attempts} times");
    assert_eq!(w.twilio.participants("general"), ["sam"]);

    // What was done stays done, and trying again (here from another process, with a
    // budget a loaded machine does not run out) finishes the rest.
    w.twilio.clear_faults();
    let app = w.app();
    app.tokens().create_chat_token("d", &token).await.unwrap();
    assert_eq!(w.twilio.participants("general"), ["sam", "alex"]);
    assert_eq!(w.twilio.conversation_names(), ["general"]);
    assert_eq!(w.twilio.user_identities(), ["sam", "alex"]);
}

#[tokio::test]
async fn when_time_runs_out_on_a_hung_try_the_error_is_twilios_last_answer() {
    let w = World::new().await;
    w.chat_token(&w.app(), "sam", &["general"]).await;
    w.twilio
        .fail(Fault::new(503, 20503).on(Method::POST, "/Participants"));
    w.twilio.fail(
        Fault::new(503, 20503)
            .on(Method::POST, "/Participants")
            .after(Duration::from_secs(5))
            .times(usize::MAX),
    );
    let app = app(&w.twilio, &w.issuer, options(Duration::from_millis(600)));

    let err = app
        .tokens()
        .create_chat_token("d", &w.token("alex", &["general"]))
        .await
        .unwrap_err();

    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        err.message.contains("HTTP 503, Twilio error 20503"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("(after 2 attempts)"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn an_error_twilio_will_not_take_back_is_not_retried() {
    let w = World::new().await;
    w.twilio
        .fail(Fault::new(400, 50350).on(Method::POST, "/ConversationWithParticipants"));
    let app = w.app();

    let err = app
        .tokens()
        .create_chat_token("d", &w.token("alex", &["general"]))
        .await
        .unwrap_err();

    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        err.message
            .contains("creating the conversation of context general")
            && err.message.contains("50350"),
        "{}",
        err.message
    );
    let creates = w
        .twilio
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path == "ConversationWithParticipants")
        .count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn wrong_credentials_are_an_internal_error_and_nothing_is_retried() {
    let w = World::new().await;
    let mut env: std::collections::HashMap<String, String> = w
        .twilio
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.insert("TWILIO_API_SECRET".into(), "not-the-secret".into());
    env.insert("CHAT_JWKS_URL".into(), w.issuer.url());
    let app = App::new(SettingsSource::env_vars(env), options(AMPLE));

    let err = app
        .tokens()
        .create_chat_token("d", &w.token("alex", &["general"]))
        .await
        .unwrap_err();

    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        err.message.contains("HTTP 401") && err.message.contains("20003"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("not-the-secret"));
    assert!(w.twilio.requests().iter().all(|r| r.status == 401));
    assert!(w.twilio.requests().len() <= 2);
}

#[tokio::test]
async fn a_context_dropped_from_the_token_is_left_and_others_are_untouched() {
    let w = World::new().await;
    // Someone else's conversation on the same service, with alex in it.
    w.twilio
        .add_conversation("watercooler", r#"{"team":"ops"}"#);
    w.twilio.add_participant("watercooler", "alex");
    let app = w.app();
    w.chat_token(&app, "alex", &["general", "SHIPMENT-42"])
        .await;
    w.chat_token(&app, "bob", &["SHIPMENT-42"]).await;
    assert_eq!(
        w.twilio.memberships("alex"),
        ["SHIPMENT-42", "general", "watercooler"]
    );

    w.chat_token(&app, "alex", &["general"]).await;

    assert_eq!(w.twilio.memberships("alex"), ["general", "watercooler"]);
    assert_eq!(w.twilio.participants("SHIPMENT-42"), ["bob"]);
    assert_eq!(w.twilio.conversation_names().len(), 3);

    // The older token again: access follows it back, though this process saw it before.
    w.chat_token(&app, "alex", &["general", "SHIPMENT-42"])
        .await;
    assert_eq!(
        w.twilio.memberships("alex"),
        ["SHIPMENT-42", "general", "watercooler"]
    );
}

#[tokio::test]
async fn a_conversation_the_old_integration_made_is_adopted_another_products_is_refused() {
    let w = World::new().await;
    w.twilio.add_conversation("general", "");
    w.twilio.add_conversation("aid", r#"{"topic":"everyone"}"#);
    w.twilio.add_conversation("odd", "not json");
    let app = w.app();

    // What the old integration made (no attributes) is adopted, not duplicated.
    w.chat_token(&app, "alex", &["general"]).await;
    let mut names = w.twilio.conversation_names();
    names.sort();
    assert_eq!(names, ["aid", "general", "odd"]);
    let attributes = w.twilio.conversation_attributes("general").unwrap();
    assert_eq!(attributes["managedBy"], MANAGED_BY);
    assert_eq!(w.twilio.participants("general"), ["alex"]);

    // Another product's room on the same service: Conflict naming it, nothing joined.
    for (context, others) in [("aid", "general"), ("odd", "general")] {
        let err = app
            .tokens()
            .create_chat_token("d", &w.token("sam", &[others, context]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);
        assert!(
            err.message.contains(&format!("context {context} ")),
            "{}",
            err.message
        );
        assert!(w.twilio.participants(context).is_empty());
        assert_eq!(
            w.twilio.participants("general"),
            ["alex"],
            "nothing changed"
        );
    }
    assert_eq!(
        w.twilio.conversation_attributes("aid").unwrap(),
        serde_json::json!({"topic": "everyone"})
    );

    // The operator opts in: taken over, its attributes kept.
    let mut env = w.env();
    env.insert("CHAT_ADOPT_CONVERSATIONS".into(), "true".into());
    let adopting = App::new(SettingsSource::env_vars(env), options(AMPLE));
    w.chat_token(&adopting, "sam", &["aid"]).await;
    let attributes = w.twilio.conversation_attributes("aid").unwrap();
    assert_eq!(attributes["topic"], "everyone");
    assert_eq!(attributes["managedBy"], MANAGED_BY);
    assert_eq!(w.twilio.participants("aid"), ["sam"]);
}

#[tokio::test]
async fn many_conversations_are_read_across_pages_and_left_together() {
    let w = World::new().await;
    let contexts: Vec<String> = (0..60).map(|i| format!("ctx-{i:02}")).collect();
    let refs: Vec<&str> = contexts.iter().map(String::as_str).collect();
    let app = w.app();
    app.tokens()
        .create_chat_token("d", &w.token("alex", &refs))
        .await
        .unwrap();
    assert_eq!(w.twilio.memberships("alex").len(), 60);

    w.twilio.clear_log();
    let other = w.app();
    w.chat_token(&other, "alex", &["ctx-59"]).await;

    assert_eq!(w.twilio.memberships("alex"), ["ctx-59"]);
    let pages = w
        .twilio
        .requests()
        .iter()
        .filter(|r| {
            r.path == format!("Users/{}/Conversations", "alex")
                || r.path.ends_with("/Conversations") && r.path.starts_with("Users/US")
        })
        .count();
    assert_eq!(pages, 2, "60 memberships are two pages of 50");
}

#[tokio::test]
async fn identities_that_need_escaping_stay_one_path_segment() {
    let w = World::new().await;
    let app = w.app();

    w.chat_token(&app, "zoë+1@example.org", &["general"]).await;

    assert_eq!(w.twilio.user_identities(), ["zoë+1@example.org"]);
    assert_eq!(w.twilio.participants("general"), ["zoë+1@example.org"]);
}

#[tokio::test]
async fn verify_token_never_calls_twilio() {
    let w = World::new().await;
    let app = w.app();
    app.tokens()
        .verify_token(&w.token("alex", &["general"]))
        .await
        .unwrap();
    assert_eq!(w.twilio.request_count(), 0);
}

#[tokio::test]
async fn the_stand_in_refuses_what_twilios_spec_does_not_allow() {
    let twilio = TwilioStandIn::start().await;
    let http = reqwest::Client::new();
    let users = format!(
        "{}/v1/Services/{}/Users",
        twilio.base_url(),
        test_support::CHAT_SERVICE_SID
    );
    let auth = (test_support::API_KEY_SID, Some(test_support::API_SECRET));

    // No Identity: Prism says the spec requires it.
    let response = http
        .post(&users)
        .basic_auth(auth.0, auth.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("FriendlyName=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // JSON instead of a form.
    http.post(&users)
        .basic_auth(auth.0, auth.1)
        .header("content-type", "application/json")
        .body(r#"{"Identity":"alex"}"#)
        .send()
        .await
        .unwrap();
    // A page larger than Twilio allows.
    http.get(format!("{users}/alex/Conversations?PageSize=51"))
        .basic_auth(auth.0, auth.1)
        .send()
        .await
        .unwrap();
    let violations = twilio.take_violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(violations[0].contains("Identity"), "{}", violations[0]);
    assert!(twilio.user_identities().is_empty());

    // A well-formed request with the wrong secret is Twilio's 401, not a spec violation.
    let response = http
        .post(&users)
        .basic_auth(auth.0, Some("wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Identity=alex")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    assert!(twilio.violations().is_empty());
}

#[tokio::test]
async fn the_platform_reads_unread_counts_in_one_request_and_titles_a_room_in_two() {
    let w = World::new().await;
    let app = w.app();
    w.chat_token(&app, "alex", &["general", "random"]).await;
    w.chat_token(&app, "sam", &["general"]).await;
    for body in ["one", "two", "three"] {
        w.twilio.add_message("general", "sam", body);
    }
    let configured = app.settings().current().await.unwrap();
    let provisioner = configured.twilio().unwrap().provisioner.clone();

    // Before alex reads anything, Twilio does not count; after, it counts from the horizon.
    let before = w.twilio.request_count();
    let counts = provisioner.unread_of("alex").await.unwrap();
    assert_eq!(
        w.twilio.request_count(),
        before + 1,
        "the user's conversation list only"
    );
    let general = counts.iter().find(|u| u.context == "general").unwrap();
    assert_eq!((general.unread, general.last_read_index), (None, None));
    assert_eq!(
        counts
            .iter()
            .map(|u| u.context.as_str())
            .collect::<Vec<_>>(),
        ["general", "random"]
    );
    w.twilio.set_last_read("general", "alex", 0);
    let counts = provisioner.unread_of("alex").await.unwrap();
    let general = counts.iter().find(|u| u.context == "general").unwrap();
    assert_eq!(
        (general.unread, general.last_read_index),
        (Some(2), Some(0))
    );
    // Someone unknown to Twilio is in no room.
    assert!(provisioner.unread_of("nobody").await.unwrap().is_empty());

    let before = w.twilio.request_count();
    let renamed = provisioner.rename("general", "Shipment 42 — Hamburg").await;
    assert_eq!(renamed.unwrap().as_deref(), Some("Shipment 42 — Hamburg"));
    assert_eq!(
        w.twilio.request_count(),
        before + 2,
        "the lookup, then the change"
    );
    assert_eq!(
        w.twilio.friendly_name("general").as_deref(),
        Some("Shipment 42 — Hamburg")
    );
    // Not this deployment's room, or none: nothing changes.
    w.twilio
        .add_conversation("theirs", r#"{"managedBy":"another-product"}"#);
    assert_eq!(
        provisioner.rename("theirs", "Mine now").await.unwrap(),
        None
    );
    assert_eq!(
        provisioner.rename("nowhere", "Anything").await.unwrap(),
        None
    );
    assert_ne!(
        w.twilio.friendly_name("theirs").as_deref(),
        Some("Mine now")
    );
    assert!(
        w.twilio.violations().is_empty(),
        "{:?}",
        w.twilio.violations()
    );
}
