//! Notifications on `chatctl serve`: the contract's two operations, the code read from the
//! outbox (local mode's mail), the embedded store across restarts, and the webhook route.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::{
    AUTH_TOKEN, Issuer, TestKey, TwilioStandIn, claims, form_body, jwks, on_message_added,
    sign_form,
};

use crate::common::{Server, operation, serve, temp_dir};

/// The outbox's emails to `to`, oldest first.
fn outbox(data: &Path, to: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("outbox"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|m| m.starts_with(&format!("To: {to}\n")))
        .collect()
}

fn code_in(mail: &str) -> String {
    mail.split("code is: ").nth(1).unwrap()[..8].to_owned()
}

async fn subscribe_and_confirm(server: &Server, data: &Path, token: &str, email: &str) {
    let body = operation(
        server,
        "enableChannelNotifications",
        json!({"channel": "general", "email": email, "token": token}),
    )
    .await;
    assert_eq!(
        body["data"]["enableChannelNotifications"]["emailVerified"], false,
        "{body}"
    );
    let mails = outbox(data, email);
    assert_eq!(mails.len(), 1);
    let body = operation(
        server,
        "verifyEmail",
        json!({"email": email, "code": code_in(&mails[0])}),
    )
    .await;
    assert_eq!(body["data"]["verifyEmail"], true, "{body}");
}

#[tokio::test]
async fn local_mode_confirms_through_the_outbox_and_keeps_it_across_restarts() {
    let data = temp_dir("serve-notify-local");
    let server = serve(&data, &[]);
    let token = server.token.clone().unwrap();

    let body = operation(
        &server,
        "verifyEmail",
        json!({"email": "alex@example.org", "code": "00000000"}),
    )
    .await;
    assert_eq!(
        body["data"]["verifyEmail"], false,
        "no code was sent: {body}"
    );
    subscribe_and_confirm(&server, &data, &token, "alex@example.org").await;
    let page = reqwest::get(format!("{}/outbox", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("To: alex@example.org"), "{page}");
    let body = operation(
        &server,
        "enableChannelNotifications",
        json!({"channel": "elsewhere", "email": "alex@example.org", "token": token}),
    )
    .await;
    assert_eq!(body["errors"][0]["errorType"], "AccessDenied", "{body}");
    drop(server);

    let server = serve(&data, &[]);
    let token = server.token.clone().unwrap();
    let body = operation(
        &server,
        "enableChannelNotifications",
        json!({"channel": "random", "email": "ALEX@example.org", "token": token}),
    )
    .await;
    assert_eq!(
        body["data"]["enableChannelNotifications"]["emailVerified"], true,
        "confirmed before the restart: {body}"
    );
}

#[tokio::test]
async fn a_signed_webhook_reaches_the_offline_subscriber_through_the_outbox() {
    let key = TestKey::es256("k1");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let twilio = TwilioStandIn::start().await;
    let mut env = twilio.env();
    env.extend([
        ("CHAT_JWKS_URL", issuer.url()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
    ]);
    let data = temp_dir("serve-notify-webhook");
    let server = serve(&data, &env);
    for who in ["alex", "sam"] {
        let token = key.token(&claims(who, &["general"]));
        let body = operation(
            &server,
            "createChatToken",
            json!({"deviceId": "d", "token": token}),
        )
        .await;
        assert!(body["data"]["createChatToken"].is_string(), "{body}");
        subscribe_and_confirm(&server, &data, &token, &format!("{who}@example.org")).await;
    }

    let url = format!("{}/twilio/webhook", server.base);
    let conversation = twilio.conversation_sid("general").unwrap();
    let params = on_message_added(
        &conversation,
        "IM00000000000000000000000000000007",
        "sam",
        "Hello",
    );
    let post = |signature: Option<String>, body: String| {
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(s) = signature {
            request = request.header("x-twilio-signature", s);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, form_body(&params)).await, 403);
    let signature = sign_form(AUTH_TOKEN, &url, &params);
    assert_eq!(
        post(
            Some(signature.clone()),
            form_body(&params).replace("Hello", "Bye")
        )
        .await,
        403
    );
    assert_eq!(post(Some(signature.clone()), form_body(&params)).await, 200);
    assert_eq!(post(Some(signature), form_body(&params)).await, 200);

    let deadline = Instant::now() + Duration::from_secs(15);
    let notified = loop {
        let mails = outbox(&data, "alex@example.org");
        if mails.len() > 1 || Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        outbox(&data, "alex@example.org").len(),
        2,
        "the code, then exactly one notification"
    );
    assert!(
        notified[1].contains("sam wrote") && notified[1].contains("Hello"),
        "{}",
        notified[1]
    );
    assert_eq!(
        outbox(&data, "sam@example.org").len(),
        1,
        "only the code: sam wrote it"
    );

    // The email's link: opening it only asks; the button stops the emails.
    let link = notified[1]
        .lines()
        .find_map(|l| l.strip_prefix("To stop these emails, open: "))
        .unwrap()
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/notifications/unsubscribe?", server.base)),
        "{link}"
    );
    let page = reqwest::get(&link).await.unwrap().text().await.unwrap();
    assert!(page.contains("<form method=post>"), "{page}");
    let client = reqwest::Client::new();
    let forged = link.replace("sig=", "sig=x");
    assert_eq!(
        client.post(&forged).send().await.unwrap().status().as_u16(),
        403
    );
    assert_eq!(
        client.post(&link).send().await.unwrap().status().as_u16(),
        200
    );
    // The subscription is gone from the store (the 10-minute window would hide a later email).
    let store = std::fs::read_to_string(data.join("notifications.json")).unwrap();
    assert!(!store.contains("SUB#alex"), "{store}");
    assert!(store.contains("SUB#sam"));
}
