//! Notifications end to end on real parts: DynamoDB and SQS through the AWS SDK against
//! moto, SendGrid's and Twilio's stand-ins on loopback (Twilio's checked by Prism), and
//! webhooks signed as Twilio signs them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_ports::{DynamoStore, SqsQueue, create_table};
use context_chat::notifications::ChannelKind::Email;
use context_chat::notifications::keys;
use context_chat::notifications::notifier::NotifyOptions;
use context_chat::notifications::service::EndsAccess;
use context_chat::notifications::{Ports, QueueMessage, Store, WebhookOutcome, WebhookRequest};
use context_chat::settings::SettingsSource;
use context_chat::{App, AppOptions, ErrorKind};
use test_support::{
    AUTH_TOKEN, Issuer, LINK_SECRET, Moto, SendGridStandIn, TestKey, TwilioStandIn, claims,
    delayed_count, drain_queue, form_body, on_message_added, on_message_added_at, sign_form,
    unique,
};

const WEBHOOK_URL: &str = "https://hooks.example.org/twilio/webhook";

struct World {
    _moto: Moto,
    twilio: TwilioStandIn,
    sendgrid: SendGridStandIn,
    _issuer: Issuer,
    key: TestKey,
    sqs: aws_sdk_sqs::Client,
    store: Arc<DynamoStore>,
    queue_url: String,
    delay_url: String,
    app: Arc<App>,
}

impl World {
    async fn new(window: Duration) -> Self {
        let moto = Moto::start();
        let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
        let twilio = TwilioStandIn::start().await;
        let sendgrid = SendGridStandIn::start().await;
        let name = unique("notify");
        let dynamodb = moto.dynamodb().await;
        create_table(&dynamodb, &name).await.unwrap();
        let sqs = moto.sqs().await;
        let (queue_url, delay_url) = moto.notify_queues(&name).await;

        let mut env = crate::env_map(twilio.env().into_iter().chain(sendgrid.env()));
        env.insert("CHAT_JWKS_URL".into(), issuer.url());
        env.insert("TWILIO_AUTH_TOKEN".into(), AUTH_TOKEN.into());
        env.insert("CHAT_LINK_SECRET".into(), LINK_SECRET.into());
        let options = AppOptions {
            notify: NotifyOptions {
                window,
                ..NotifyOptions::default()
            },
            ..AppOptions::default()
        };
        let store = Arc::new(DynamoStore::new(dynamodb, name));
        let app = App::builder(SettingsSource::env_vars(env), options)
            .ports(Ports {
                store: store.clone(),
                queue: Some(Arc::new(SqsQueue::new(
                    sqs.clone(),
                    Some(queue_url.clone()),
                    Some(delay_url.clone()),
                ))),
                public_url: Some("https://api.example.org/".parse().unwrap()),
            })
            .lend(EndsAccess::HOOK)
            .build();
        Self {
            _moto: moto,
            twilio,
            sendgrid,
            _issuer: issuer,
            key,
            sqs,
            store,
            queue_url,
            delay_url,
            app: Arc::new(app),
        }
    }

    fn token(&self, identity: &str, contexts: &[&str]) -> String {
        self.key.token(&claims(identity, contexts))
    }

    /// The user joins (createChatToken), subscribes and, unless `confirm` is false, types
    /// the code from the email.
    async fn subscriber(&self, identity: &str, confirm: bool) -> String {
        let email = format!("{identity}@example.org");
        let token = self.token(identity, &["general"]);
        self.app
            .tokens()
            .create_chat_token("d", &token)
            .await
            .unwrap();
        let verified = self
            .app
            .notifications()
            .unwrap()
            .subscribe(Email, "general", &email, &token)
            .await
            .unwrap();
        assert!(!verified, "a new address is not confirmed yet");
        if confirm {
            let code = code_in(&self.sendgrid, &email);
            assert_eq!(
                self.app
                    .notifications()
                    .unwrap()
                    .confirm(Email, &email, &code, None)
                    .await,
                Ok(true)
            );
        }
        email
    }

    /// Posts a signed onMessageAdded to the app's webhook.
    async fn post_message(&self, message_sid: &str, author: &str, body: &str) -> WebhookOutcome {
        self.post_message_at(message_sid, author, body, "0").await
    }

    /// The same, for the message at `index` in the conversation.
    async fn post_message_at(
        &self,
        message_sid: &str,
        author: &str,
        body: &str,
        index: &str,
    ) -> WebhookOutcome {
        let conversation = self.twilio.conversation_sid("general").unwrap();
        let params = on_message_added_at(&conversation, message_sid, author, body, index);
        let signature = sign_form(AUTH_TOKEN, WEBHOOK_URL, &params);
        let body = form_body(&params);
        self.app
            .notifications()
            .unwrap()
            .receive_webhook(&WebhookRequest {
                url: WEBHOOK_URL,
                signature: Some(&signature),
                content_type: Some("application/x-www-form-urlencoded"),
                body: body.as_bytes(),
            })
            .await
            .unwrap()
    }

    /// Hands everything on the FIFO queue to the notifier, as the notify function would.
    async fn run_notifier(&self) -> usize {
        let messages = drain_queue(&self.sqs, &self.queue_url).await;
        for m in &messages {
            let message = QueueMessage::from_json(m.body.as_deref().unwrap()).unwrap();
            self.app
                .notifications()
                .unwrap()
                .notify(&message)
                .await
                .unwrap();
        }
        messages.len()
    }

    /// Posts a message to the webhook, runs the notifier, and counts the notifications
    /// `email` has had so far.
    async fn deliver(&self, message_sid: &str, author: &str, body: &str, email: &str) -> usize {
        self.post_message(message_sid, author, body).await;
        self.run_notifier().await;
        self.notifications_to(email).len()
    }

    fn notifications_to(&self, email: &str) -> Vec<test_support::SentEmail> {
        self.sendgrid
            .sent_to(email)
            .into_iter()
            .filter(|e| !e.subject.contains("confirmation code"))
            .collect()
    }
}

fn code_in(sendgrid: &SendGridStandIn, email: &str) -> String {
    let mail = sendgrid
        .sent_to(email)
        .into_iter()
        .rev()
        .find(|e| e.subject.contains("confirmation code"))
        .expect("a confirmation email");
    let code: String = mail
        .text
        .split("code is: ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert_eq!(code.len(), 8, "{}", mail.text);
    code
}

#[tokio::test]
async fn one_email_to_each_offline_confirmed_subscriber_and_none_to_the_rest() {
    let world = World::new(Duration::from_secs(600)).await;
    let alex = world.subscriber("alex", true).await; // offline
    let sam = world.subscriber("sam", true).await; // the author
    let chris = world.subscriber("chris", true).await; // online
    let dana = world.subscriber("dana", false).await; // never confirmed
    let eve = world.subscriber("eve", true).await; // online unknown
    world.twilio.set_online("alex", Some(false));
    world.twilio.set_online("chris", Some(true));
    world.twilio.set_online("dana", Some(false));

    // Twilio delivers the same webhook twice.
    for _ in 0..2 {
        assert!(matches!(
            world
                .post_message(
                    "IM00000000000000000000000000000001",
                    "sam",
                    "Truck leaves at 9 & not later"
                )
                .await,
            WebhookOutcome::Queued { .. }
        ));
    }
    assert_eq!(
        world.run_notifier().await,
        1,
        "the FIFO queue dropped the repeat"
    );

    let to_alex = world.notifications_to(&alex);
    assert_eq!(to_alex.len(), 1);
    let mail = &to_alex[0];
    assert_eq!(mail.from, "notifications@chat.example.org");
    assert!(
        mail.subject.contains("sam") && mail.subject.contains("general"),
        "{}",
        mail.subject
    );
    for part in [
        "\"general\"",
        "sam wrote",
        "Truck leaves at 9 & not later",
        "To stop these emails",
    ] {
        assert!(mail.text.contains(part), "{part} in {}", mail.text);
    }
    assert_eq!(
        world.notifications_to(&eve).len(),
        1,
        "unknown presence counts as offline"
    );
    assert!(world.notifications_to(&sam).is_empty(), "not to the author");
    assert!(
        world.notifications_to(&chris).is_empty(),
        "not to an online user"
    );
    assert!(
        world.notifications_to(&dana).is_empty(),
        "not to an unconfirmed address"
    );

    // The queue delivers the same message again (a Lambda retry after the 5-minute
    // de-duplication window): still one email.
    let conversation = world.twilio.conversation_sid("general").unwrap();
    let again = QueueMessage::Message(context_chat::notifications::MessageEvent {
        conversation_sid: conversation,
        message_sid: "IM00000000000000000000000000000001".into(),
        author: "sam".into(),
        body: "Truck leaves at 9 & not later".into(),
        date_created: "2026-11-22T10:00:00.000Z".into(),
        index: None,
    });
    world
        .app
        .notifications()
        .unwrap()
        .notify(&again)
        .await
        .unwrap();
    assert_eq!(world.notifications_to(&alex).len(), 1);
    assert!(world.sendgrid.refused().is_empty());
}

#[tokio::test]
async fn later_messages_fold_into_the_next_email() {
    // Long enough that the second run comes inside it even on a loaded machine (the tests run
    // several at a time).
    let window = Duration::from_secs(6);
    let world = World::new(window).await;
    let alex = world.subscriber("alex", true).await;
    world.subscriber("sam", true).await;

    assert_eq!(
        world
            .deliver("IM00000000000000000000000000000001", "sam", "first", &alex)
            .await,
        1
    );

    world
        .post_message("IM00000000000000000000000000000002", "sam", "second")
        .await;
    assert_eq!(
        world
            .deliver("IM00000000000000000000000000000003", "sam", "third", &alex)
            .await,
        1,
        "inside the window: folded"
    );
    let flushes = delayed_count(&world.sqs, &world.delay_url).await
        + drain_queue(&world.sqs, &world.delay_url).await.len();
    assert_eq!(flushes, 1, "one flush queued for the window's end");

    tokio::time::sleep(window + Duration::from_secs(1)).await;
    let flush = QueueMessage::Flush {
        context: "general".into(),
        address: context_chat::notifications::EmailAddress::parse(&alex)
            .unwrap()
            .into(),
    };
    world
        .app
        .notifications()
        .unwrap()
        .notify(&flush)
        .await
        .unwrap();
    world
        .app
        .notifications()
        .unwrap()
        .notify(&flush)
        .await
        .unwrap();
    let mails = world.notifications_to(&alex);
    assert_eq!(
        mails.len(),
        2,
        "one more email, however often the flush comes"
    );
    assert!(
        mails[1].subject.starts_with("2 new messages"),
        "{}",
        mails[1].subject
    );
    assert!(mails[1].text.contains("second") && mails[1].text.contains("third"));
}

#[tokio::test]
async fn a_failed_send_is_retried_without_losing_or_repeating_the_message() {
    let world = World::new(Duration::from_secs(600)).await;
    let alex = world.subscriber("alex", true).await;
    // Three tries per send: one notify meets only failures.
    world.sendgrid.fail_next(503, 3);
    world
        .post_message("IM00000000000000000000000000000001", "sam", "hello")
        .await;
    let messages = drain_queue(&world.sqs, &world.queue_url).await;
    let message = QueueMessage::from_json(messages[0].body.as_deref().unwrap()).unwrap();
    let err = world
        .app
        .notifications()
        .unwrap()
        .notify(&message)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(world.notifications_to(&alex).is_empty());
    // SendGrid is back; SQS delivers the message again.
    world
        .app
        .notifications()
        .unwrap()
        .notify(&message)
        .await
        .unwrap();
    world
        .app
        .notifications()
        .unwrap()
        .notify(&message)
        .await
        .unwrap();
    let mails = world.notifications_to(&alex);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains("hello"));
}

#[tokio::test]
async fn the_link_in_the_email_stops_that_channels_emails_and_only_with_its_signature() {
    let world = World::new(Duration::from_secs(0)).await;
    let alex = world.subscriber("alex", true).await;
    world
        .post_message("IM00000000000000000000000000000001", "sam", "one")
        .await;
    world.run_notifier().await;
    let mail = world.notifications_to(&alex).pop().expect("an email");
    let link = mail
        .text
        .lines()
        .find_map(|l| l.strip_prefix("To stop these emails, open: "))
        .unwrap_or_else(|| panic!("a link in {}", mail.text));
    let url: url::Url = link.parse().unwrap();
    assert_eq!(url.path(), "/notifications/unsubscribe");
    assert_eq!(mail.list_unsubscribe, Some(format!("<{link}>")));
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let (channel, email, sig) = (&query["channel"], &query["email"], &query["sig"]);
    assert_eq!(
        (channel.as_str(), email.as_str()),
        ("general", alex.as_str())
    );

    for (c, e, s) in [
        ("random", email.as_str(), sig.as_str()),
        (channel.as_str(), "sam@example.org", sig.as_str()),
        (channel.as_str(), email.as_str(), "AAAA"),
    ] {
        let err = world
            .app
            .notifications()
            .unwrap()
            .unsubscribe(c, e, s)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied);
    }
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .unsubscribe(channel, email, sig)
            .await,
        Ok(1)
    );
    assert_eq!(
        world
            .deliver("IM00000000000000000000000000000002", "sam", "two", &alex)
            .await,
        1,
        "no email after unsubscribing"
    );
}

#[tokio::test]
async fn forged_and_altered_webhooks_are_refused_and_queue_nothing() {
    let world = World::new(Duration::from_secs(600)).await;
    world.subscriber("alex", true).await;
    let conversation = world.twilio.conversation_sid("general").unwrap();
    let params = on_message_added(
        &conversation,
        "IM00000000000000000000000000000009",
        "sam",
        "hi",
    );
    let good = sign_form(AUTH_TOKEN, WEBHOOK_URL, &params);
    let body = form_body(&params);
    let altered = body.replace("Body=hi", "Body=click+this+link");
    let forged = sign_form("not-the-auth-token-0000000000000", WEBHOOK_URL, &params);
    for (signature, body, url) in [
        (None, body.as_str(), WEBHOOK_URL),
        (Some(forged.as_str()), body.as_str(), WEBHOOK_URL),
        (Some(good.as_str()), altered.as_str(), WEBHOOK_URL),
        (
            Some(good.as_str()),
            body.as_str(),
            "https://evil.example.org/twilio/webhook",
        ),
        (Some("not base64!"), body.as_str(), WEBHOOK_URL),
    ] {
        let err = world
            .app
            .notifications()
            .unwrap()
            .receive_webhook(&WebhookRequest {
                url,
                signature,
                content_type: Some("application/x-www-form-urlencoded"),
                body: body.as_bytes(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied, "{signature:?} {url}");
    }
    assert_eq!(drain_queue(&world.sqs, &world.queue_url).await.len(), 0);
}

#[tokio::test]
async fn subscribing_needs_the_context_in_the_token_and_a_real_address() {
    let world = World::new(Duration::from_secs(600)).await;
    let token = world.token("alex", &["general"]);
    let err = world
        .app
        .notifications()
        .unwrap()
        .subscribe(Email, "SHIPMENT-42", "alex@example.org", &token)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    let err = world
        .app
        .notifications()
        .unwrap()
        .subscribe(Email, "general", "not an address", &token)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    let err = world
        .app
        .notifications()
        .unwrap()
        .subscribe(Email, "general", "alex@example.org", "not-a-token")
        .await
        .unwrap_err();
    assert_ne!(err.kind, ErrorKind::InternalError);
    assert!(
        world.sendgrid.sent().is_empty(),
        "nothing sent for refused calls"
    );

    // Subscribing again within a minute does not send a second code; once confirmed,
    // it answers true.
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .subscribe(Email, "general", "Alex@Example.org", &token)
            .await,
        Ok(false)
    );
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .subscribe(Email, "general", "alex@example.org", &token)
            .await,
        Ok(false)
    );
    assert_eq!(world.sendgrid.sent().len(), 1);
    let code = code_in(&world.sendgrid, "alex@example.org");
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .confirm(Email, "ALEX@example.org", &code, None)
            .await,
        Ok(true)
    );
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .subscribe(Email, "general", "alex@example.org", &token)
            .await,
        Ok(true)
    );
}

/// A miss, no code, an unknown address: the same `false`. Tries without a
/// token are counted per address, apart from the identity's own.
#[tokio::test]
async fn every_miss_is_the_same_false_and_guessing_burns_no_ones_tries() {
    let world = World::new(Duration::from_secs(600)).await;
    let email = world.subscriber("alex", false).await;
    let code = code_in(&world.sendgrid, &email);
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let notifications = world.app.notifications().unwrap();
    assert_eq!(
        notifications.confirm(Email, &email, wrong, None).await,
        Ok(false)
    );
    assert_eq!(
        notifications
            .confirm(Email, "nobody@example.org", &code, None)
            .await,
        Ok(false),
        "an unknown address answers as a wrong code does"
    );
    let err = notifications
        .confirm(Email, &email, "12ab", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("8 digits"));
    // Someone guessing without a token uses up the address's allowance…
    for _ in 0..4 {
        assert_eq!(
            notifications.confirm(Email, &email, wrong, None).await,
            Ok(false)
        );
    }
    assert_eq!(
        notifications.confirm(Email, &email, &code, None).await,
        Ok(false),
        "after five guesses without a token, none is tried"
    );
    // …but not alex's: with alex's token, the code still confirms.
    let mallory = world.token("mallory", &["general"]);
    assert_eq!(
        notifications
            .confirm(Email, &email, &code, Some(&mallory))
            .await,
        Ok(false),
        "the code was not asked for by mallory"
    );
    let alex = world.token("alex", &["general"]);
    assert_eq!(
        notifications
            .confirm(Email, &email, &code, Some(&alex))
            .await,
        Ok(true)
    );
    assert_eq!(
        notifications
            .confirm(Email, &email, &code, Some(&alex))
            .await,
        Ok(false),
        "a used code is no pending code"
    );
}

/// An address alex confirmed is not confirmed for mallory: subscribing
/// with it sends mallory a code instead of answering true, and mallory gets no email.
#[tokio::test]
async fn an_address_confirmed_by_one_identity_is_not_confirmed_for_another() {
    let world = World::new(Duration::ZERO).await;
    let email = world.subscriber("alex", true).await;
    let mallory = world.token("mallory", &["general"]);
    world
        .app
        .tokens()
        .create_chat_token("d", &mallory)
        .await
        .unwrap();
    let notifications = world.app.notifications().unwrap();
    assert_eq!(
        notifications
            .subscribe(Email, "general", &email, &mallory)
            .await,
        Ok(false),
        "confirmed for alex is not confirmed for mallory"
    );
    // alex leaves the context; mallory's subscription at the same address gets nothing.
    let alex = world.token("alex", &[]);
    world
        .app
        .tokens()
        .create_chat_token("d", &alex)
        .await
        .unwrap();
    world.twilio.set_online("mallory", Some(false));
    world
        .post_message("IM00000000000000000000000000000007", "sam", "for members")
        .await;
    world.run_notifier().await;
    assert!(world.notifications_to(&email).is_empty());
}

/// A subscriber whose token no longer carries the context gets no email,
/// their subscription ends, and what they had read is never emailed.
#[tokio::test]
async fn email_follows_access_and_only_what_is_unread() {
    let world = World::new(Duration::ZERO).await;
    let alex = world.subscriber("alex", true).await;
    let blair = world.subscriber("blair", true).await;
    for who in ["alex", "blair"] {
        world.twilio.set_online(who, Some(false));
    }
    // blair read up to message 3 on another device.
    world.twilio.set_last_read("general", "blair", 3);
    for (sid, index) in [
        ("IM00000000000000000000000000000003", "3"),
        ("IM00000000000000000000000000000004", "4"),
    ] {
        world.post_message_at(sid, "sam", "news", index).await;
    }
    world.run_notifier().await;
    assert_eq!(world.notifications_to(&alex).len(), 2);
    assert_eq!(
        world.notifications_to(&blair).len(),
        1,
        "message 3 was read"
    );

    // The platform drops "general" from alex's token: provisioning takes alex out of the
    // conversation and ends the subscription at once; no more email.
    let subscription = keys::subscription("general", "alex");
    assert!(world.store.get(&subscription).await.unwrap().is_some());
    let dropped = world.token("alex", &["random"]);
    world
        .app
        .tokens()
        .create_chat_token("d", &dropped)
        .await
        .unwrap();
    assert!(
        world.store.get(&subscription).await.unwrap().is_none(),
        "provisioning ended the subscription of the context it left"
    );
    // blair is removed in Twilio behind our back: the notifier finds out itself.
    world.twilio.remove_participant("general", "blair");
    assert_eq!(
        world
            .deliver(
                "IM00000000000000000000000000000005",
                "sam",
                "members only",
                &alex
            )
            .await,
        2
    );
    assert_eq!(world.notifications_to(&blair).len(), 1);
    let token = world.token("alex", &["general"]);
    world
        .app
        .tokens()
        .create_chat_token("d", &token)
        .await
        .unwrap();
    assert_eq!(
        world
            .deliver(
                "IM00000000000000000000000000000006",
                "sam",
                "back again",
                &alex
            )
            .await,
        2,
        "the subscription ended with the access; a new one is needed"
    );
}

#[tokio::test]
async fn racing_tries_never_exceed_five() {
    let world = World::new(Duration::from_secs(600)).await;
    let email = world.subscriber("alex", false).await;
    let code = code_in(&world.sendgrid, &email);
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let alex = world.token("alex", &["general"]);
    let tries = (0..12).map(|_| {
        let app = world.app.clone();
        let (email, alex) = (email.clone(), alex.clone());
        tokio::spawn(async move {
            app.notifications()
                .unwrap()
                .confirm(Email, &email, wrong, Some(&alex))
                .await
        })
    });
    for result in futures_util::future::join_all(tries).await {
        assert_eq!(result.unwrap(), Ok(false));
    }
    assert_eq!(
        world
            .app
            .notifications()
            .unwrap()
            .confirm(Email, &email, &code, Some(&alex))
            .await,
        Ok(false),
        "five wrong tries, however they raced, end the code"
    );
}

/// A digest waiting for one address is not sent there after the subscriber
/// moved their subscription to another address.
#[tokio::test]
async fn a_pending_digest_does_not_follow_an_old_address() {
    // Long enough for the steps before the flush on a loaded machine.
    let window = Duration::from_secs(6);
    let world = World::new(window).await;
    let old = world.subscriber("alex", true).await;
    world.subscriber("sam", true).await;
    world
        .post_message("IM00000000000000000000000000000001", "sam", "first")
        .await;
    assert_eq!(
        world
            .deliver("IM00000000000000000000000000000002", "sam", "second", &old)
            .await,
        1,
        "the second one waits"
    );

    // alex moves to a new address (and confirms it) before the digest is due.
    let token = world.token("alex", &["general"]);
    let new = "alex.new@example.org";
    let notifications = world.app.notifications().unwrap();
    assert_eq!(
        notifications.subscribe(Email, "general", new, &token).await,
        Ok(false)
    );
    let code = code_in(&world.sendgrid, new);
    assert_eq!(
        notifications.confirm(Email, new, &code, Some(&token)).await,
        Ok(true)
    );

    tokio::time::sleep(window + Duration::from_secs(1)).await;
    let flush = QueueMessage::Flush {
        context: "general".into(),
        address: context_chat::notifications::EmailAddress::parse(&old)
            .unwrap()
            .into(),
    };
    notifications.notify(&flush).await.unwrap();
    assert_eq!(
        world.notifications_to(&old).len(),
        1,
        "nothing more to the address alex left"
    );
}

/// L3: mallory subscribes alex's address under mallory's identity (unconfirmed: mallory
/// cannot read alex's code) and writes; alex, who confirmed the address, is still told.
#[tokio::test]
async fn an_unconfirmed_subscription_does_not_silence_the_addresss_owner() {
    let world = World::new(Duration::from_secs(600)).await;
    let alex = world.subscriber("alex", true).await;
    world.twilio.set_online("alex", Some(false));
    let mallory = world.token("mallory", &["general"]);
    world
        .app
        .tokens()
        .create_chat_token("d", &mallory)
        .await
        .unwrap();
    let verified = world
        .app
        .notifications()
        .unwrap()
        .subscribe(Email, "general", &alex, &mallory)
        .await
        .unwrap();
    assert!(!verified, "alex's address is not mallory's");

    world
        .post_message("IM00000000000000000000000000000031", "mallory", "psst")
        .await;
    assert_eq!(world.run_notifier().await, 1);
    let to_alex = world.notifications_to(&alex);
    assert_eq!(to_alex.len(), 1, "alex is told of mallory's message");
    assert!(to_alex[0].text.contains("psst"));
}
