//! `chatctl configure-twilio` against the Twilio stand-in: a dry run changes nothing, the
//! first run sets the service up, the second finds nothing to change.

use std::process::Output;

use context_chat::twilio::service_setup::{
    MODERATOR_PERMISSIONS, MODERATOR_ROLE, PARTICIPANT_PERMISSIONS, PARTICIPANT_ROLE,
    READER_PERMISSIONS, READER_ROLE, USER_PERMISSIONS, USER_ROLE,
};
use test_support::TwilioStandIn;

use crate::common::{chatctl, failed};

const WEBHOOK: &str = "https://chat.example.org/twilio/webhook";

async fn configure(twilio: &TwilioStandIn, args: &[&str]) -> Output {
    let mut all = vec!["configure-twilio"];
    all.extend_from_slice(args);
    let mut cmd = chatctl(&all);
    cmd.envs(twilio.env());
    cmd.env(
        "TWILIO_WEBHOOK_PATH_SECRET",
        test_support::WEBHOOK_PATH_SECRET,
    );
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// How many lines of configure-twilio's report say it changed something.
fn changed(out: &str) -> usize {
    out.lines().filter(|l| l.starts_with("changed")).count()
}

#[tokio::test]
async fn a_dry_run_changes_nothing_then_setup_is_applied_once() {
    let twilio = TwilioStandIn::start().await;
    let configuration_before = twilio.configuration();

    let dry = stdout(&configure(&twilio, &["--webhook-url", WEBHOOK, "--dry-run"]).await);
    assert!(dry.contains("dry run"), "{dry}");
    assert!(
        dry.contains(
            "Text messages: not configured (environment variable TWILIO_VERIFY_SERVICE_SID and"
        ),
        "{dry}"
    );
    // Four roles (a user's, a participant's, a reader's, a moderator's), the configuration,
    // the webhook.
    assert_eq!(
        dry.lines().filter(|l| l.starts_with("would")).count(),
        6,
        "{dry}"
    );
    assert!(
        dry.contains(
            "create the conversation role \"context-chat reader\" with editNotificationLevel"
        ),
        "{dry}"
    );
    assert!(twilio.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(twilio.role_count(), 4);
    assert_eq!(twilio.configuration(), configuration_before);

    let first = stdout(&configure(&twilio, &["--webhook-url", WEBHOOK]).await);
    assert_eq!(changed(&first), 6, "{first}");
    for (name, wanted) in [
        (READER_ROLE, READER_PERMISSIONS),
        (MODERATOR_ROLE, MODERATOR_PERMISSIONS),
    ] {
        let (kind, mut permissions) = twilio.role(name).unwrap();
        permissions.sort();
        assert_eq!(
            (kind.as_str(), permissions),
            ("conversation", sorted(wanted))
        );
    }
    let (kind, mut permissions) = twilio.role(USER_ROLE).unwrap();
    permissions.sort();
    assert_eq!(
        (kind.as_str(), permissions),
        ("service", sorted(USER_PERMISSIONS))
    );
    let (kind, mut permissions) = twilio.role(PARTICIPANT_ROLE).unwrap();
    permissions.sort();
    assert_eq!(
        (kind.as_str(), permissions),
        ("conversation", sorted(PARTICIPANT_PERMISSIONS))
    );
    let configuration = twilio.configuration();
    assert_eq!(configuration["reachability_enabled"], true);
    assert_ne!(
        configuration["default_chat_service_role_sid"],
        configuration_before["default_chat_service_role_sid"]
    );
    assert_eq!(
        configuration["default_conversation_role_sid"],
        configuration["default_conversation_creator_role_sid"]
    );
    // M2: Twilio gets the URL with the path secret; the terminal never shows it.
    let webhooks = twilio.webhooks();
    let secret = test_support::WEBHOOK_PATH_SECRET;
    assert_eq!(webhooks["post_webhook_url"], format!("{WEBHOOK}/{secret}"));
    for out in [&dry, &first] {
        assert!(!out.contains(secret), "{out}");
        assert!(
            out.contains("/twilio/webhook/<webhook/pathSecret>"),
            "{out}"
        );
    }
    let elsewhere = configure(&twilio, &["--webhook-url", "https://chat.example.org/hook"]).await;
    assert!(!elsewhere.status.success());
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("must end with /twilio/webhook"));
    assert_eq!(webhooks["method"], "POST");
    assert_eq!(webhooks["filters"], serde_json::json!(["onMessageAdded"]));

    twilio.clear_log();
    let second = stdout(&configure(&twilio, &["--webhook-url", WEBHOOK]).await);
    assert!(second.contains("Nothing to change."), "{second}");
    assert_eq!(
        second.lines().filter(|l| l.starts_with("ok")).count(),
        6,
        "{second}"
    );
    assert!(twilio.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(twilio.role_count(), 8);
}

#[tokio::test]
async fn a_dry_run_names_the_sms_services_and_refuses_a_wrong_one() {
    let twilio = TwilioStandIn::start().await;
    let sms = [
        (
            "TWILIO_VERIFY_SERVICE_SID",
            test_support::sms::VERIFY_SERVICE_SID,
        ),
        (
            "TWILIO_MESSAGING_SERVICE_SID",
            test_support::sms::MESSAGING_SERVICE_SID,
        ),
    ];
    let run = |sms: Vec<(&'static str, &'static str)>| {
        let mut cmd = chatctl(&["configure-twilio", "--dry-run"]);
        cmd.envs(twilio.env()).envs(sms);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let output = run(sms.to_vec()).await.unwrap();
    let dry = stdout(&output);
    assert!(
        dry.contains(&format!(
            "Text messages: Verify service {} and Messaging Service {}",
            sms[0].1, sms[1].1
        )),
        "{dry}"
    );
    // Issue 30, M3: the budgets are named, and texts to any country are warned of...
    assert!(
        dry.contains("at most 100 codes and 500 texts a day"),
        "{dry}"
    );
    assert!(
        dry.contains("Text messages go to any country (environment variable SMS_ALLOWED_COUNTRIES is not set)"),
        "{dry}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("sms/allowedCountries is not set").count(),
        1,
        "{stderr}"
    );
    // ...until the countries are set.
    let mut limited = sms.to_vec();
    limited.extend([
        ("SMS_ALLOWED_COUNTRIES", "+49,+44"),
        ("SMS_DAILY_CODES", "20"),
    ]);
    let output = run(limited).await.unwrap();
    let dry = stdout(&output);
    assert!(
        dry.contains("at most 20 codes and 500 texts a day"),
        "{dry}"
    );
    assert!(dry.contains("Text messages go only to +49, +44"), "{dry}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("allowedCountries"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = run(vec![sms[0]]).await.unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("TWILIO_MESSAGING_SERVICE_SID"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn permissions_someone_changed_are_put_back_and_other_webhook_filters_kept() {
    let twilio = TwilioStandIn::start().await;
    stdout(&configure(&twilio, &["--webhook-url", WEBHOOK]).await);
    // An operator widened the participant role and added a filter of their own in the console.
    let mut widened: Vec<&str> = PARTICIPANT_PERMISSIONS.to_vec();
    widened.push("addParticipant");
    twilio.set_role_permissions(PARTICIPANT_ROLE, &widened);
    twilio.set_webhook_filters(&["onConversationAdded"]);

    let out = stdout(&configure(&twilio, &["--webhook-url", WEBHOOK]).await);

    assert_eq!(changed(&out), 2, "{out}");
    let (_, mut permissions) = twilio.role(PARTICIPANT_ROLE).unwrap();
    permissions.sort();
    assert_eq!(permissions, sorted(PARTICIPANT_PERMISSIONS));
    assert_eq!(
        twilio.webhooks()["filters"],
        serde_json::json!(["onConversationAdded", "onMessageAdded"])
    );

    // Without --webhook-url the webhook is reported, not touched.
    let out = stdout(&configure(&twilio, &[]).await);
    assert!(
        out.lines()
            .any(|l| l.starts_with("skipped") && l.contains(WEBHOOK)),
        "{out}"
    );
    assert!(out.contains("Nothing to change."), "{out}");
}

#[tokio::test]
async fn without_twilio_settings_it_refuses_clearly() {
    let output = tokio::task::spawn_blocking(|| chatctl(&["configure-twilio"]).output().unwrap())
        .await
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("STACK_NAME") && stderr.contains("TWILIO_API_KEY"),
        "{stderr}"
    );

    let output = tokio::task::spawn_blocking(|| {
        chatctl(&[
            "configure-twilio",
            "--webhook-url",
            "http://example.org/hook",
        ])
        .output()
        .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("https"));
}
