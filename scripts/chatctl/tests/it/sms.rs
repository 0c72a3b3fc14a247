//! Text messages on `chatctl serve`: numbers verified through Twilio Verify (the stateful
//! stand-in, every request checked by Prism), notifications through the Messages resource,
//! STOP; local mode's embedded Verify and outbox; and every refusal changing nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use context_chat::notifications::keys;
use context_chat::notifications::sqlite_store::SqliteStore;
use context_chat::notifications::{Key, PhoneNumber, Store};
use serde_json::{Value, json};
use test_support::sms::{FRAUD_BLOCKED, GEO_BLOCKED, LANDLINE};
use test_support::{AUTH_TOKEN, SmsStandIn, TestKey, claims, incoming_sms, on_message_added};

use crate::common::{Local, Server, answered, call, error_type, serve, temp_dir};

const SUBSCRIBE: &str = "mutation S($channel: ID!, $phone: String!, $token: ID!) { \
    enableChannelSmsNotifications(channel: $channel, phone: $phone, token: $token) { phoneVerified } }";
const VERIFY: &str = "mutation V($phone: String!, $code: String!, $token: ID!) { \
    verifyPhone(phone: $phone, code: $code, token: $token) }";

async fn subscribe(server: &Server, context: &str, phone: &str, token: &str) -> Value {
    answered(
        server,
        SUBSCRIBE,
        json!({"channel": context, "phone": phone, "token": token}),
    )
    .await
}

async fn verify(server: &Server, phone: &str, code: &str, token: &str) -> Value {
    answered(
        server,
        VERIFY,
        json!({"phone": phone, "code": code, "token": token}),
    )
    .await
}

/// Whether `store` holds a record under `key`.
async fn has(store: &impl Store, key: &Key) -> bool {
    store.get(key).await.unwrap().is_some()
}

fn phone_verified(body: &Value) -> bool {
    body["data"]["enableChannelSmsNotifications"]["phoneVerified"]
        .as_bool()
        .unwrap_or_else(|| panic!("{body}"))
}

fn sms_subscription(context: &str, identity: &str) -> Key {
    keys::sms_subscription(context, identity)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The local server with the SMS stand-in (Verify and Messages) beside Twilio's.
struct Deployment {
    local: Local,
    sms: SmsStandIn,
}

impl std::ops::Deref for Deployment {
    type Target = Local;

    fn deref(&self) -> &Local {
        &self.local
    }
}

impl Deployment {
    async fn start(name: &str) -> Self {
        Self::start_with(name, &[]).await
    }

    /// With more settings in the server's environment.
    async fn start_with(name: &str, settings: &[(&'static str, &str)]) -> Self {
        let sms = SmsStandIn::start().await;
        let mut env = sms.env();
        env.extend(settings.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let local = Local::start(name, TestKey::es256("k1"), &env).await;
        Self { local, sms }
    }

    /// Subscribes `phone` to `context` by text; whether the number was verified already.
    async fn phone_verified(&self, context: &str, phone: &str, token: &str) -> bool {
        phone_verified(&subscribe(&self.server, context, phone, token).await)
    }

    /// A context token for `who`, and their Twilio user made by provisioning.
    async fn member(&self, who: &str, contexts: &[&str]) -> String {
        let token = self.key.token(&claims(who, contexts));
        let (_, body) = call(
            &self.server,
            "mutation C($t: ID!) { createChatToken(deviceId: \"d\", token: $t) }",
            json!({"t": token}),
            None,
            None,
        )
        .await;
        assert!(body["data"]["createChatToken"].is_string(), "{body}");
        token
    }

    async fn subscribed_and_verified(&self, context: &str, phone: &str, token: &str) {
        assert!(!self.phone_verified(context, phone, token).await);
        let code = self.sms.last_code(phone).expect("a code was texted");
        let body = verify(&self.server, phone, &code, token).await;
        assert_eq!(body["data"]["verifyPhone"], true, "{body}");
    }

    async fn webhook(&self, context: &str, message_sid: &str, author: &str, body: &str) {
        let conversation = self.twilio.conversation_sid(context).unwrap();
        let params = on_message_added(&conversation, message_sid, author, body);
        assert_eq!(self.server.post_webhook(&params, AUTH_TOKEN).await, 200);
    }

    /// `from` texts `body` to the Messaging Service; Twilio posts it to the webhook, signed
    /// with `token`. Answers the HTTP status.
    async fn texts_back(&self, message_sid: &str, from: &str, body: &str, token: &str) -> u16 {
        let params = incoming_sms(message_sid, from, body);
        self.server.post_webhook(&params, token).await
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.data).unwrap()
    }
}

const ALEX: &str = "+14155550101";
const SAM: &str = "+14155550102";

#[tokio::test]
async fn subscribe_verify_and_one_text_for_the_offline_member_until_stop() {
    let d = Deployment::start("serve-sms").await;
    let alex = d.member("alex", &["general", "random"]).await;
    let sam = d.member("sam", &["general", "random"]).await;
    let kim = d.member("kim", &["general"]).await;

    // Refused before Twilio is asked: a malformed number, a context the token lacks.
    let body = subscribe(&d.server, "general", "+1 415 555 01OI", &alex).await;
    assert_eq!(error_type(&body), "BadRequest", "{body}");
    let body = subscribe(&d.server, "elsewhere", ALEX, &alex).await;
    assert_eq!(error_type(&body), "AccessDenied", "{body}");
    assert!(d.sms.requests().is_empty(), "{:?}", d.sms.requests());

    // Spaces and dashes are normalised; a wrong code is false, the right one binds.
    let body = subscribe(&d.server, "general", "+1 415-555-0101", &alex).await;
    assert!(!phone_verified(&body), "{body}");
    assert_eq!(d.sms.codes_sent(ALEX), 1);
    let code = d.sms.last_code(ALEX).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let body = verify(&d.server, ALEX, wrong, &alex).await;
    assert_eq!(body["data"]["verifyPhone"], false, "{body}");
    let body = verify(&d.server, ALEX, &code, &alex).await;
    assert_eq!(body["data"]["verifyPhone"], true, "{body}");
    // Verified: another context subscribes at once, without a code.
    assert!(d.phone_verified("random", ALEX, &alex).await);
    assert_eq!(d.sms.codes_sent(ALEX), 1);

    // A number verified by alex is not verified for kim: kim gets no say with alex's code.
    assert!(!d.phone_verified("general", ALEX, &kim).await);
    let body = verify(&d.server, ALEX, &code, &kim).await;
    assert_eq!(body["data"]["verifyPhone"], false, "{body}");
    let body = verify(&d.server, SAM, "123456", &kim).await;
    assert_eq!(error_type(&body), "BadRequest", "no code asked for: {body}");

    d.subscribed_and_verified("general", SAM, &sam).await;

    // sam writes: exactly one text, to alex (kim's number is not verified; sam wrote it).
    d.webhook(
        "general",
        "IM00000000000000000000000000000001",
        "sam",
        "Truck leaves at 6.",
    )
    .await;
    wait_for("a text", || !d.sms.sent().is_empty()).await;
    // A second message in the window folds; nothing more is sent.
    d.webhook(
        "general",
        "IM00000000000000000000000000000002",
        "sam",
        "Bring water.",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent = d.sms.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, ALEX);
    assert_eq!(
        sent[0].messaging_service_sid,
        test_support::sms::MESSAGING_SERVICE_SID
    );
    assert_eq!(
        sent[0].body,
        "sam in \"general\": Truck leaves at 6.\nReply STOP to stop"
    );

    // alex replies STOP: the next text is refused with 21610, and every text subscription
    // of the number ends (both contexts), with its verification.
    d.sms.reply_stop(ALEX);
    let store = d.store();
    assert!(has(&store, &sms_subscription("general", "alex")).await);
    d.webhook(
        "random",
        "IM00000000000000000000000000000003",
        "sam",
        "Hello",
    )
    .await;
    let phone = PhoneNumber::parse(ALEX).unwrap();
    let record = keys::phone(&phone, "alex");
    let deadline = Instant::now() + Duration::from_secs(15);
    while has(&store, &record).await {
        assert!(
            Instant::now() < deadline,
            "the STOP did not end the subscriptions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for context in ["general", "random"] {
        assert!(
            !has(&store, &sms_subscription(context, "alex")).await,
            "{context}"
        );
    }
    assert!(has(&store, &sms_subscription("general", "sam")).await);
    assert_eq!(d.sms.sent().len(), 1);

    // No phone number in the server's log.
    let log = std::fs::read_to_string(d.data.join("server.log")).unwrap();
    for number in [ALEX, SAM, "4155550101", "4155550102"] {
        assert!(!log.contains(number), "{number} in the log");
    }
}

#[tokio::test]
async fn verifys_refusals_are_clear_errors_and_change_nothing() {
    let d = Deployment::start("serve-sms-refusals").await;
    let alex = d.member("alex", &["general"]).await;

    for (number, expected) in [
        (LANDLINE, "BadRequest"),
        (FRAUD_BLOCKED, "AccessDenied"),
        (GEO_BLOCKED, "AccessDenied"),
    ] {
        let body = subscribe(&d.server, "general", number, &alex).await;
        assert_eq!(error_type(&body), expected, "{number}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains(&number[1..]), "the number in {message:?}");
    }
    // Nothing stored, nothing counted: no subscription, and alex may still have two
    // numbers waiting.
    let store = d.store();
    assert!(!has(&store, &sms_subscription("general", "alex")).await);
    assert!(!d.phone_verified("general", ALEX, &alex).await);
    assert!(!d.phone_verified("general", SAM, &alex).await);
    // A second tap within a minute sends no second code.
    assert!(!d.phone_verified("general", ALEX, &alex).await);
    assert_eq!(d.sms.codes_sent(ALEX), 1);
    // Our own limits: a third number waiting is refused, before Twilio.
    let asked = d.sms.requests().len();
    let body = subscribe(&d.server, "general", "+14155550103", &alex).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    assert_eq!(d.sms.requests().len(), asked);
    let stored = store
        .get(&sms_subscription("general", "alex"))
        .await
        .unwrap();
    assert_eq!(
        stored.unwrap().fields["phone"],
        ALEX,
        "the last accepted number"
    );

    // Three wrong checks from one identity, then ours refuse before Verify is asked (issue 30,
    // L5); Verify's own five-check rule (60202) is the gateway's (context-chat's sms tests).
    for _ in 0..3 {
        let body = verify(&d.server, SAM, "000001", &alex).await;
        assert_eq!(body["data"]["verifyPhone"], false, "{body}");
    }
    let body = verify(&d.server, SAM, "000001", &alex).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    // Expired after ten minutes (404/20404).
    d.sms.expire_verifications();
    let code = d.sms.last_code(ALEX).unwrap();
    let body = verify(&d.server, ALEX, &code, &alex).await;
    assert_eq!(error_type(&body), "BadRequest", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    // Five codes a day per identity, verified numbers no longer waiting.
    let pat = d.key.token(&claims("pat", &["general"]));
    let number = |n: u32| format!("+1415555{:04}", 200 + n);
    for n in 1..=5 {
        assert!(!d.phone_verified("general", &number(n), &pat).await);
        let code = d.sms.last_code(&number(n)).unwrap();
        assert_eq!(
            verify(&d.server, &number(n), &code, &pat).await["data"]["verifyPhone"],
            true
        );
    }
    let body = subscribe(&d.server, "general", &number(6), &pat).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("a day"),
        "{body}"
    );
    assert_eq!(d.sms.codes_sent(&number(6)), 0);

    // Too many sends to one number (60203; five identities, one code each): the sixth
    // identity's allowance is given back.
    for n in 1..=5 {
        let token = d.key.token(&claims(&format!("user{n}"), &["general"]));
        assert!(!d.phone_verified("general", "+14155550104", &token).await);
    }
    let kim = d.key.token(&claims("kim", &["general"]));
    let body = subscribe(&d.server, "general", "+14155550104", &kim).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sent to this number"),
        "{body}"
    );
    assert!(!has(&store, &sms_subscription("general", "kim")).await);
    // Kim's refused number does not wait: two others may.
    assert!(!d.phone_verified("general", "+14155550105", &kim).await);
    assert!(!d.phone_verified("general", "+14155550106", &kim).await);
}

#[tokio::test]
async fn local_mode_verifies_through_the_outbox() {
    let data = temp_dir("serve-sms-local");
    let server = serve(&data, &[]);
    let token = server.token.clone().unwrap();
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.starts_with("SMS: an embedded Verify")),
        "{:?}",
        server.banner
    );
    assert!(!phone_verified(
        &subscribe(&server, "general", ALEX, &token).await
    ));
    let texts = outbox_sms(&data, ALEX);
    assert_eq!(texts.len(), 1, "{texts:?}");
    let code = texts[0].rsplit(' ').next().unwrap().trim().to_owned();
    let body = verify(&server, ALEX, "999999x", &token).await;
    assert_eq!(error_type(&body), "BadRequest", "not digits: {body}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        verify(&server, ALEX, wrong, &token).await["data"]["verifyPhone"],
        false
    );
    assert_eq!(
        verify(&server, ALEX, &code, &token).await["data"]["verifyPhone"],
        true
    );
    assert!(phone_verified(
        &subscribe(&server, "random", ALEX, &token).await
    ));
    let page = server.page("/outbox").await;
    assert!(page.contains("Via: SMS"), "{page}");
}

#[tokio::test]
async fn without_the_services_sms_is_not_configured_and_email_keeps_working() {
    let local = Local::start("serve-sms-none", TestKey::es256("k1"), &[]).await;
    let Local { server, key, .. } = &local;
    let token = key.token(&claims("alex", &["general"]));
    let body = subscribe(server, "general", ALEX, &token).await;
    assert_eq!(error_type(&body), "InternalError", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("SMS is not configured"),
        "{body}"
    );
    let body = verify(server, ALEX, "123456", &token).await;
    assert_eq!(error_type(&body), "InternalError", "{body}");
    let (_, body) = call(
        server,
        "mutation E($t: ID!) { enableChannelNotifications(channel: \"general\", email: \"alex@example.org\", token: $t) { emailVerified } }",
        json!({"t": token}),
        None,
        None,
    )
    .await;
    assert_eq!(
        body["data"]["enableChannelNotifications"]["emailVerified"], false,
        "{body}"
    );
}

/// The outbox's text messages to `to`, oldest first.
fn outbox_sms(data: &Path, to: &str) -> Vec<String> {
    context_chat::notifications::Outbox::list(&data.join("outbox"))
        .into_iter()
        .filter(|(name, content)| {
            name.ends_with(".sms") && content.starts_with(&format!("To: {to}\n"))
        })
        .map(|(_, content)| content)
        .collect()
}

/// L5: Verify counts checks per number, whoever makes them. mallory asks for a code to
/// alex's number and guesses: past 3 wrong codes we refuse before asking Verify, so alex,
/// who asked for his own code, still has tries left and verifies.
#[tokio::test]
async fn another_identity_cannot_burn_the_numbers_tries() {
    let d = Deployment::start("sms-l5").await;
    let alex = d.member("alex", &["general"]).await;
    let mallory = d.member("mallory", &["general"]).await;
    let phone = "+14155550123";
    assert!(!d.phone_verified("general", phone, &mallory).await);
    assert!(!d.phone_verified("general", phone, &alex).await);
    let code = d.sms.last_code(phone).expect("a code was texted");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let body = verify(&d.server, phone, wrong, &mallory).await;
        assert_eq!(body["data"]["verifyPhone"], false, "{body}");
    }
    // The fourth: refused by us, Verify not asked (it would have counted a fourth check).
    let checks_before = d.sms.requests().len();
    let body = verify(&d.server, phone, wrong, &mallory).await;
    assert_eq!(body["errors"][0]["errorType"], "TooManyRequests", "{body}");
    assert_eq!(
        d.sms.requests().len(),
        checks_before,
        "Verify was not asked"
    );
    let body = verify(&d.server, phone, wrong, &mallory).await;
    assert_eq!(body["errors"][0]["errorType"], "TooManyRequests", "{body}");
    // alex mistypes once, then types his code: still within Verify's five.
    assert_eq!(
        verify(&d.server, phone, wrong, &alex).await["data"]["verifyPhone"],
        false
    );
    let body = verify(&d.server, phone, &code, &alex).await;
    assert_eq!(body["data"]["verifyPhone"], true, "{body}");
}

/// M3 (in part): the allowance of codes is given back only when Verify refused for good;
/// after a 5xx the code may have gone out, so it stays counted.
#[tokio::test]
async fn a_code_that_may_have_gone_out_stays_counted() {
    let d = Deployment::start("sms-m3").await;
    let alex = d.member("alex", &["general"]).await;
    let sender = keys::phone_sender("alex");
    d.sms.fail_next("Verifications", 500, true);
    let body = subscribe(&d.server, "general", "+14155550181", &alex).await;
    assert_eq!(body["errors"][0]["errorType"], "InternalError", "{body}");
    let log = d
        .store()
        .get(&sender)
        .await
        .unwrap()
        .expect("still counted");
    assert_eq!(log.fields["sends"], 1, "{:?}", log.fields);
    // A refusal for good (a landline: 60205) gives it back.
    let body = subscribe(&d.server, "general", LANDLINE, &alex).await;
    assert_eq!(body["errors"][0]["errorType"], "BadRequest", "{body}");
    let log = d
        .store()
        .get(&sender)
        .await
        .unwrap()
        .expect("the first code");
    assert_eq!(log.fields["sends"], 1, "{:?}", log.fields);
}

/// The seconds a `TooManyRequests` message says to wait.
fn retry_after(body: &Value) -> u64 {
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    message
        .split("Try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry time in {body}"))
}

/// M3: what the whole deployment sends a day is capped in the store (codes and texts, each
/// with its budget), and numbers outside the allowed countries are refused before Twilio
/// is asked and before anything is counted.
#[tokio::test]
async fn daily_budgets_and_allowed_countries_cap_what_the_deployment_pays() {
    let d = Deployment::start_with(
        "sms-budgets",
        &[
            ("SMS_DAILY_CODES", "2"),
            ("SMS_DAILY_TEXTS", "1"),
            ("SMS_ALLOWED_COUNTRIES", "+1"),
        ],
    )
    .await;
    let alex = d.member("alex", &["general"]).await;
    let sam = d.member("sam", &["general"]).await;
    let kim = d.member("kim", &["general"]).await;
    let kims_allowance = keys::phone_sender("kim");

    let body = subscribe(&d.server, "general", "+447700900123", &kim).await;
    assert_eq!(error_type(&body), "BadRequest", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("+1"),
        "{body}"
    );
    assert!(d.sms.requests().is_empty(), "{:?}", d.sms.requests());
    assert!(d.store().get(&kims_allowance).await.unwrap().is_none());

    // Two codes today for everyone: alex's and sam's go out; kim's, within kim's own five,
    // is refused until tomorrow (UTC), without asking Verify, and kim's allowance is kept.
    d.subscribed_and_verified("general", ALEX, &alex).await;
    d.subscribed_and_verified("general", SAM, &sam).await;
    let asked = d.sms.requests().len();
    let body = subscribe(&d.server, "general", "+14155550103", &kim).await;
    assert_eq!(error_type(&body), "TooManyRequests", "{body}");
    assert!((1..=86_400).contains(&retry_after(&body)), "{body}");
    assert_eq!(d.sms.requests().len(), asked, "Verify was asked");
    assert!(d.store().get(&kims_allowance).await.unwrap().is_none());

    // One text today: kim writes, alex and sam are offline; one of them is texted and the
    // other's text is held (not an error the queue would retry all day).
    d.webhook(
        "general",
        "IM00000000000000000000000000000011",
        "kim",
        "Hello",
    )
    .await;
    wait_for("a text", || !d.sms.sent().is_empty()).await;
    let metrics = |server: &Server| {
        let url = format!("{}/metrics", server.base);
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(&d.server).await;
        if text.contains("context_chat_sms_text_budget_reached_total 1") {
            assert!(
                text.contains("context_chat_sms_code_budget_reached_total 1"),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no held text counted: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.sms.sent().len(), 1, "{:?}", d.sms.sent());
    assert!(
        d.sms
            .requests()
            .iter()
            .all(|r| !r.body.contains("447700900123")),
        "a request for the refused number"
    );
}

/// L5: a number that replied STOP gets no code, whoever asks, until the number itself texts
/// START (Twilio posts it to the webhook, signed). A STOP texted to the Messaging Service ends
/// the number's subscriptions at once, as a refused text (21610) does.
#[tokio::test]
async fn a_number_that_replied_stop_gets_no_code_until_it_texts_start() {
    let d = Deployment::start("sms-stop").await;
    let alex = d.member("alex", &["general"]).await;
    let sam = d.member("sam", &["general"]).await;
    let mallory = d.member("mallory", &["general"]).await;
    d.subscribed_and_verified("general", ALEX, &alex).await;
    d.subscribed_and_verified("general", SAM, &sam).await;
    let alexs = keys::phone(&PhoneNumber::parse(ALEX).unwrap(), "alex");

    // alex texts STOP; the Messaging Service opts the number out and tells the webhook.
    d.sms.reply_stop(ALEX);
    let stop = "SM00000000000000000000000000000001";
    assert_eq!(d.texts_back(stop, ALEX, " stop ", AUTH_TOKEN).await, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.store().get(&alexs).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the STOP did not end alex's verification"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d.store()
            .get(&sms_subscription("general", "sam"))
            .await
            .unwrap()
            .is_some()
    );

    // No code goes to the number: not for alex, not for mallory. Verify is not asked.
    let asked = d.sms.requests().len();
    for token in [&alex, &mallory] {
        let body = subscribe(&d.server, "general", ALEX, token).await;
        assert_eq!(error_type(&body), "AccessDenied", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("text START"),
            "{body}"
        );
    }
    assert_eq!(d.sms.requests().len(), asked);

    // A START that is not Twilio's (a wrong signature), or from another number, or any other
    // text from the number, ends nothing.
    let start = "SM00000000000000000000000000000002";
    assert_eq!(
        d.texts_back(start, ALEX, "START", "not-the-auth-token")
            .await,
        403
    );
    assert_eq!(d.texts_back(start, SAM, "START", AUTH_TOKEN).await, 200);
    let hello = "SM00000000000000000000000000000003";
    assert_eq!(
        d.texts_back(hello, ALEX, "start please", AUTH_TOKEN).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = subscribe(&d.server, "general", ALEX, &alex).await;
    assert_eq!(error_type(&body), "AccessDenied", "{body}");

    // The number texts START: codes go to it again, and alex verifies anew.
    d.sms.reply_start(ALEX);
    let start = "SM00000000000000000000000000000004";
    assert_eq!(d.texts_back(start, ALEX, "Start", AUTH_TOKEN).await, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = subscribe(&d.server, "general", ALEX, &alex).await;
        if body["errors"].is_null() {
            assert!(!phone_verified(&body), "{body}");
            break;
        }
        assert_eq!(error_type(&body), "AccessDenied", "{body}");
        assert!(Instant::now() < deadline, "the START was not taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = d.sms.last_code(ALEX).expect("a new code");
    assert_eq!(
        verify(&d.server, ALEX, &code, &alex).await["data"]["verifyPhone"],
        true
    );
}
