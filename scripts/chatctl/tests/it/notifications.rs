//! Notifications on `chatctl serve`: the contract's two operations, the code read from the
//! outbox (local mode's mail), the embedded store across restarts, and the webhook route.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use context_chat::notifications::Store;
use context_chat::notifications::keys;
use context_chat::notifications::sqlite_store::{FILE_NAME as SQLITE_FILE, SqliteStore};
use serde_json::json;
use test_support::{AUTH_TOKEN, TestKey, claims, form_body, on_message_added, sign_form};

use crate::common::{Local, Server, operation, serve, subscribe_email, temp_dir};

/// The outbox's emails to `to`, oldest first.
pub fn outbox(data: &Path, to: &str) -> Vec<String> {
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

pub async fn subscribe_and_confirm(server: &Server, data: &Path, token: &str, email: &str) {
    let body = subscribe_email(server, "general", email, token).await;
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
    let page = server.page("/outbox").await;
    assert!(page.contains("To: alex@example.org"), "{page}");
    let body = subscribe_email(&server, "elsewhere", "alex@example.org", &token).await;
    assert_eq!(body["errors"][0]["errorType"], "AccessDenied", "{body}");
    drop(server);

    let server = serve(&data, &[]);
    let token = server.token.clone().unwrap();
    let body = subscribe_email(&server, "random", "ALEX@example.org", &token).await;
    assert_eq!(
        body["data"]["enableChannelNotifications"]["emailVerified"], true,
        "confirmed before the restart: {body}"
    );
}

#[tokio::test]
async fn a_signed_webhook_reaches_the_offline_subscriber_through_the_outbox() {
    let local = Local::start("serve-notify-webhook", TestKey::es256("k1"), &[]).await;
    let Local {
        server,
        key,
        twilio,
        data,
        ..
    } = &local;
    for who in ["alex", "sam"] {
        let token = key.token(&claims(who, &["general"]));
        let body = operation(
            server,
            "createChatToken",
            json!({"deviceId": "d", "token": token}),
        )
        .await;
        assert!(body["data"]["createChatToken"].is_string(), "{body}");
        subscribe_and_confirm(server, data, &token, &format!("{who}@example.org")).await;
    }

    let url = server.webhook_url();
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
        let mails = outbox(data, "alex@example.org");
        if mails.len() > 1 || Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        outbox(data, "alex@example.org").len(),
        2,
        "the code, then exactly one notification"
    );
    assert!(
        notified[1].contains("sam wrote") && notified[1].contains("Hello"),
        "{}",
        notified[1]
    );
    assert_eq!(
        outbox(data, "sam@example.org").len(),
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
    // (Read while the server runs: SQLite's WAL lets another process read.)
    let store = SqliteStore::open(data).unwrap();
    let subscription = |identity: &str| keys::subscription("general", identity);
    assert!(store.get(&subscription("alex")).await.unwrap().is_none());
    assert!(store.get(&subscription("sam")).await.unwrap().is_some());
}

#[tokio::test]
async fn revoked_access_end_to_end_no_email_once_the_token_drops_the_context() {
    let local = Local::start("serve-revoked", TestKey::es256("k1"), &[]).await;
    let Local {
        server,
        key,
        twilio,
        data,
        ..
    } = &local;
    for who in ["alex", "blair"] {
        let token = key.token(&claims(who, &["general"]));
        let body = operation(
            server,
            "createChatToken",
            json!({"deviceId": "d", "token": token}),
        )
        .await;
        assert!(body["data"]["createChatToken"].is_string(), "{body}");
        subscribe_and_confirm(server, data, &token, &format!("{who}@example.org")).await;
    }
    // The platform drops "general" from alex's token; alex's widget asks for a chat token.
    let dropped = key.token(&claims("alex", &["random"]));
    let body = operation(
        server,
        "createChatToken",
        json!({"deviceId": "d", "token": dropped}),
    )
    .await;
    assert!(body["data"]["createChatToken"].is_string(), "{body}");
    assert_eq!(twilio.memberships("alex"), ["random"]);

    let conversation = twilio.conversation_sid("general").unwrap();
    let params = on_message_added(
        &conversation,
        "IM00000000000000000000000000000008",
        "sam",
        "After alex left",
    );
    assert_eq!(server.post_webhook(&params, AUTH_TOKEN).await, 200);
    // blair, still a member, is told; once that email is out, alex has had none.
    let deadline = Instant::now() + Duration::from_secs(15);
    while outbox(data, "blair@example.org").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        outbox(data, "blair@example.org").len(),
        2,
        "the code, then the message"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        outbox(data, "alex@example.org").len(),
        1,
        "only the code: no email once access ended"
    );
}

#[tokio::test]
async fn a_server_killed_mid_run_leaves_a_store_that_opens_with_every_acknowledged_write() {
    let data = temp_dir("serve-sigkill");
    let mut server = serve(&data, &[]);
    let base = server.base.clone();
    // Writers that keep writing until the kill cuts them off, recording what the server
    // acknowledged: each subscription answered.
    // Tokens signed here with the server's development key (its token API would limit this
    // one address to 10 a minute).
    let signer = Arc::new(
        context_chat::dev_token::DevIssuer::from_pem(
            &std::fs::read_to_string(data.join("dev-issuer-private.pem")).unwrap(),
            &std::fs::read_to_string(data.join("dev-issuer.kid")).unwrap(),
            "the test's copy",
        )
        .unwrap(),
    );
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers = (0..6).map(|w| {
        let base = base.clone();
        let signer = signer.clone();
        let written = written.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let identity = format!("user-{w}-{i}");
                let minted = json!({"token": signer.sign(&identity, &["general"], test_support::now(), 600).unwrap()});
                let body = json!({
                    "query": "mutation($t: ID!, $e: String!) { enableChannelNotifications(channel: \"general\", email: $e, token: $t) { emailVerified } }",
                    "variables": {"t": minted["token"], "e": format!("{identity}@example.org")},
                });
                let answer = client
                    .post(format!("{base}/graphql"))
                    .json(&body)
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status() == 200 => {
                        let body: serde_json::Value = match r.json().await {
                            Ok(b) => b,
                            Err(_) => break,
                        };
                        assert!(body["errors"].is_null(), "{body}");
                        acknowledged.push(identity);
                        written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            acknowledged
        })
    });
    let writers: Vec<_> = writers.collect();
    // Once enough writes were acknowledged (however loaded the machine), and while more are
    // under way: SIGKILL, nothing is flushed or closed on the way out.
    let deadline = Instant::now() + Duration::from_secs(20);
    while written.load(std::sync::atomic::Ordering::SeqCst) <= 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 10,
        "the server wrote before it was killed"
    );

    let db = rusqlite::Connection::open(data.join(SQLITE_FILE)).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    let store = SqliteStore::open(&data).unwrap();
    for identity in &acknowledged {
        let key = keys::subscription("general", identity);
        assert!(
            store.get(&key).await.unwrap().is_some(),
            "{identity}'s subscription was acknowledged"
        );
    }
}
