//! The twilio-webhook function under cargo lambda's local runtime: HTTP API (payload 2.0)
//! events in, its settings in SSM on moto, the FIFO queue on moto.

use context_chat::notifications::EmailAddress;
use context_chat::notifications::unsubscribe::UnsubscribeSigner;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{
    AUTH_TOKEN, Emulator, Function, Invocation, LINK_SECRET, Moto, WEBHOOK_PATH_SECRET,
    drain_queue, form_body, http_api_event, on_message_added, put_notification_settings,
    put_parameter, put_settings, sign_form, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_twilio-webhook");
const DOMAIN: &str = "abc123.execute-api.eu-west-1.amazonaws.com";
const CONVERSATION: &str = "CH00000000000000000000000000000042";

/// Twilio's POST to the webhook, as the HTTP API hands it over.
fn http_event(signature: Option<&str>, body: &str) -> Value {
    http_event_at(&webhook_path(), signature, body)
}

/// Where Twilio posts: under the path secret.
fn webhook_path() -> String {
    format!("/twilio/webhook/{WEBHOOK_PATH_SECRET}")
}

fn http_event_at(path: &str, signature: Option<&str>, body: &str) -> Value {
    let mut headers = json!({
        "content-type": "application/x-www-form-urlencoded",
        "host": DOMAIN,
        "user-agent": "TwilioProxy/1.1",
    });
    if let Some(signature) = signature {
        headers["x-twilio-signature"] = signature.into();
    }
    http_api_event("POST", DOMAIN, path, &[], headers, Some(body))
}

/// sam's message `sid` in the conversation, as Twilio posts it.
fn sams_message<'a>(sid: &'a str, body: &'a str) -> Vec<(&'static str, &'a str)> {
    on_message_added(CONVERSATION, sid, "sam", body)
}

/// `params` posted to the webhook's URL, signed as Twilio signs them.
fn signed_event(params: &[(&str, &str)]) -> Value {
    let url = format!("https://{DOMAIN}{}", webhook_path());
    http_event(
        Some(&sign_form(AUTH_TOKEN, &url, params)),
        &form_body(params),
    )
}

/// A 500 that says "not configured" and names none of `hidden` (parameters, the stack).
fn assert_not_configured(answer: &Value, hidden: &[&str]) {
    assert_eq!(answer["statusCode"], 500, "{answer}");
    let body = answer["body"].as_str().unwrap();
    assert!(body.contains("not configured"), "{body}");
    assert!(hidden.iter().all(|h| !body.contains(h)), "{body}");
}

fn status(invocation: Invocation) -> i64 {
    invocation.value()["statusCode"].as_i64().unwrap()
}

/// The POST of an unsubscribe link for `alex@example.org` and `general`, signed with `key`.
fn unsubscribe_event(key: &str) -> Value {
    let email = EmailAddress::parse("alex@example.org").unwrap();
    let sig = UnsubscribeSigner::new(&SecretString::from(key)).signature("general", &email);
    http_api_event(
        "POST",
        DOMAIN,
        "/notifications/unsubscribe",
        &[
            ("channel", "general"),
            ("email", "alex@example.org"),
            ("sig", &sig),
        ],
        json!({"host": DOMAIN}),
        None,
    )
}

/// The function on `stack`'s settings, with its queues.
/// A stack with the webhook's settings (the auth token in its old place, notifications').
async fn stack_with_settings(prefix: &str) -> (Moto, String) {
    let moto = Moto::start();
    let stack = unique(prefix);
    let ssm = moto.ssm().await;
    put_settings(&ssm, &stack, "https://issuer.example/jwks.json", "secret").await;
    put_notification_settings(&ssm, &stack).await;
    (moto, stack)
}

async fn start(moto: &Moto, stack: &str, emulator: &Emulator) -> (Function, String) {
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, stack).await.unwrap();
    let (queue_url, delay_url) = moto.notify_queues(stack).await;
    let mut env = moto.env();
    env.extend([
        ("STACK_NAME", stack.to_owned()),
        ("NOTIFICATIONS_TABLE", stack.to_owned()),
        ("NOTIFY_QUEUE_URL", queue_url.clone()),
        ("NOTIFY_DELAY_QUEUE_URL", delay_url),
    ]);
    let function = Function::of(BINARY, emulator, &env);
    (function, queue_url)
}

#[tokio::test]
async fn queues_signed_messages_once_and_refuses_forgeries_with_403() {
    let (moto, stack) = stack_with_settings("webhook").await;
    let emulator = Emulator::start();
    let (function, queue_url) = start(&moto, &stack, &emulator).await;

    let url = format!("https://{DOMAIN}{}", webhook_path());
    let params = sams_message("IM00000000000000000000000000000001", "Hi & bye");
    let signature = sign_form(AUTH_TOKEN, &url, &params);
    let body = form_body(&params);
    for _ in 0..2 {
        let answer = emulator
            .invoke("twilio-webhook", &http_event(Some(&signature), &body))
            .await;
        assert_eq!(status(answer), 200);
    }
    let sqs = moto.sqs().await;
    let queued = drain_queue(&sqs, &queue_url).await;
    assert_eq!(queued.len(), 1, "de-duplicated by message SID");
    let message: Value = serde_json::from_str(queued[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(message["kind"], "message");
    assert_eq!(message["conversationSid"], CONVERSATION);
    assert_eq!(message["author"], "sam");
    assert_eq!(message["body"], "Hi & bye");

    let altered = body.replace("Hi+%26+bye", "Click+here");
    assert_ne!(altered, body);
    for (signature, body) in [
        (None, body.as_str()),
        (Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), body.as_str()),
        (Some(signature.as_str()), altered.as_str()),
    ] {
        let answer = emulator
            .answer("twilio-webhook", &http_event(signature, body))
            .await;
        assert_eq!(answer["statusCode"], 403, "{answer}");
    }
    assert!(drain_queue(&sqs, &queue_url).await.is_empty());

    // Other events are acknowledged and left alone.
    let other = [
        ("EventType", "onConversationAdded"),
        ("ConversationSid", CONVERSATION),
    ];
    let answer = emulator
        .invoke("twilio-webhook", &signed_event(&other))
        .await;
    assert_eq!(status(answer), 200);
    assert!(drain_queue(&sqs, &queue_url).await.is_empty());

    // L5: a STOP texted back to the Messaging Service (its incoming-message webhook on the
    // same URL) is queued once, grouped by a hash of the number, never named by it; any
    // other text is acknowledged and left alone.
    for (sid, text) in [
        ("SM00000000000000000000000000000001", "STOP"),
        ("SM00000000000000000000000000000001", "STOP"),
        ("SM00000000000000000000000000000002", "see you at 6"),
    ] {
        let params = test_support::incoming_sms(sid, "+14155550101", text);
        let answer = emulator
            .invoke("twilio-webhook", &signed_event(&params))
            .await;
        assert_eq!(status(answer), 200);
    }
    let queued = drain_queue(&sqs, &queue_url).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let reply: Value = serde_json::from_str(queued[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(reply["kind"], "smsReply");
    assert_eq!(reply["from"], "+14155550101");
    assert_eq!(reply["optIn"], false);
    let group = test_support::moto::group_id(&queued[0]).unwrap_or_default();
    assert!(
        group.starts_with("sms-") && !group.contains("4155550101"),
        "{group}"
    );
    assert!(!function.output().contains("4155550101"));

    // An email's unsubscribe link: GET asks, POST with a wrong signature is refused.
    for (method, expected) in [("GET", 200), ("POST", 403)] {
        let event = http_api_event(
            method,
            DOMAIN,
            "/notifications/unsubscribe",
            &[
                ("channel", "general"),
                ("email", "alex@example.org"),
                ("sig", "AAAA"),
            ],
            json!({"host": DOMAIN}),
            None,
        );
        let answer = emulator.answer("twilio-webhook", &event).await;
        assert_eq!(answer["statusCode"], expected, "{method} {answer}");
        assert!(
            answer["body"]
                .as_str()
                .unwrap()
                .contains("alex@example.org")
                || method == "POST"
        );
    }

    // Links signed with the link secret hold, and so do those sent before it existed,
    // signed with the auth token.
    for key in [LINK_SECRET, AUTH_TOKEN] {
        let answer = emulator
            .invoke("twilio-webhook", &unsubscribe_event(key))
            .await;
        assert_eq!(status(answer), 200);
    }

    let logs = function.output();
    assert!(
        !logs.contains(AUTH_TOKEN) && !logs.contains(&signature) && !logs.contains(LINK_SECRET),
        "{logs}"
    );
    assert!(logs.contains("webhook refused"), "{logs}");

    // Its metrics, one EMF line per HTTP invocation: 2 queued, 3 refused (403), 1 other
    // event, 3 texts back, the unsubscribe page, the refused POST and two unsubscribes.
    let lines = function.metrics(13);
    assert_eq!(lines.len(), 13, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l["Function"] == "twilio-webhook" && l["Requests"] == 1)
    );
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l.get("WebhooksRefused").is_some())
        .collect();
    assert_eq!(refused.len(), 3);
    for line in refused {
        assert_eq!(line["ErrorType"], "AccessDenied");
        assert_eq!(line["WebhooksRefused"], 1);
        assert_eq!(line["Errors"], 1);
    }
    assert!(
        lines
            .iter()
            .all(|l| !l.to_string().contains("alex@example.org"))
    );
}

#[tokio::test]
async fn the_auth_token_at_its_old_place_still_checks_webhooks_and_none_is_not_named() {
    let moto = Moto::start();
    let stack = unique("webhook-old");
    let ssm = moto.ssm().await;
    // What the existing integration has (the auth token under twilio/), and the path secret
    // scripts/deploy makes when it is missing.
    put_parameter(
        &ssm,
        &format!("/{stack}/twilio/authToken"),
        AUTH_TOKEN,
        true,
    )
    .await;
    let path_secret = format!("/{stack}/webhook/pathSecret");
    put_parameter(&ssm, &path_secret, WEBHOOK_PATH_SECRET, true).await;
    let emulator = Emulator::start();
    let (_function, queue_url) = start(&moto, &stack, &emulator).await;
    let params = sams_message("IM00000000000000000000000000000002", "hi");
    let signed = signed_event(&params);
    assert_eq!(
        status(emulator.invoke("twilio-webhook", &signed).await),
        200
    );
    assert_eq!(drain_queue(&moto.sqs().await, &queue_url).await.len(), 1);
    // No link secret: links cannot be checked, and the answer does not say which parameter.
    let answer = emulator
        .answer("twilio-webhook", &unsubscribe_event(AUTH_TOKEN))
        .await;
    assert_not_configured(&answer, &["linkSecret", &stack]);

    // No auth token anywhere: 500, "not configured", no parameter named.
    let bare = unique("webhook-bare");
    let path_secret = format!("/{bare}/webhook/pathSecret");
    put_parameter(&ssm, &path_secret, WEBHOOK_PATH_SECRET, true).await;
    let emulator = Emulator::start();
    let (function, _) = start(&moto, &bare, &emulator).await;
    let answer = emulator.answer("twilio-webhook", &signed).await;
    assert_not_configured(&answer, &["authToken", &bare]);
    // The operator learns which one from the log.
    let named = format!("/{bare}/webhook/authToken");
    assert!(
        function.wait_for_output(&named, std::time::Duration::from_secs(10)),
        "{}",
        function.output()
    );
}

/// M2: only Twilio knows the webhook's path. A post to any other path, the old one without a
/// secret included, is refused with 404 before any work, signed or not: nothing is queued,
/// and no signature is checked (a flood of guesses is no `WebhooksRefused` alarm).
#[tokio::test]
async fn a_webhook_at_any_other_path_is_refused_before_any_work() {
    let (moto, stack) = stack_with_settings("webhook-path").await;
    let emulator = Emulator::start();
    let (function, queue_url) = start(&moto, &stack, &emulator).await;
    let params = sams_message("IM00000000000000000000000000000031", "hi");
    let body = form_body(&params);
    let sqs = moto.sqs().await;

    let wrong = "test-webhook-path-0123456789abcdeX";
    for path in [
        "/twilio/webhook".to_owned(),
        format!("/twilio/webhook/{wrong}"),
        format!("/twilio/webhook/{}", &WEBHOOK_PATH_SECRET[..20]),
    ] {
        // Signed for that very URL, as someone who knows the auth token but not the path.
        let signature = sign_form(AUTH_TOKEN, &format!("https://{DOMAIN}{path}"), &params);
        let answer = emulator
            .answer(
                "twilio-webhook",
                &http_event_at(&path, Some(&signature), &body),
            )
            .await;
        assert_eq!(answer["statusCode"], 404, "{path}: {answer}");
    }
    assert!(
        drain_queue(&sqs, &queue_url).await.is_empty(),
        "nothing queued"
    );
    let output = function.output();
    assert!(
        !output.contains("webhook refused"),
        "no signature was checked: {output}"
    );
    assert!(
        !output.contains(WEBHOOK_PATH_SECRET),
        "the secret is never logged"
    );

    // Under the path secret, the same message is queued.
    let url = format!("https://{DOMAIN}{}", webhook_path());
    let signature = sign_form(AUTH_TOKEN, &url, &params);
    let answer = emulator
        .invoke("twilio-webhook", &http_event(Some(&signature), &body))
        .await;
    assert_eq!(status(answer), 200);
    assert_eq!(drain_queue(&sqs, &queue_url).await.len(), 1);
}
