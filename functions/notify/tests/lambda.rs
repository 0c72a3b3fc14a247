//! The notify function under cargo lambda's local runtime: SQS events in, partial batch
//! failures out; the store on moto's DynamoDB, Twilio's and SendGrid's stand-ins.

use context_chat::notifications::Subscription;
use context_chat::notifications::codes::EmailRecord;
use context_chat::notifications::keys;
use context_chat::notifications::store::{self, Store};
use context_chat::notifications::{EmailAddress, MessageEvent, QueueMessage};
use serde_json::{Value, json};
use test_support::{
    Emulator, Function, Moto, SendGridStandIn, TwilioStandIn, put_notification_settings,
    put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_notify");

fn sqs_event(records: &[(&str, String)]) -> Value {
    json!({"Records": records.iter().map(|(id, body)| json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341600000",
                       "MessageGroupId": "CH", "MessageDeduplicationId": id},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:notify.fifo",
        "awsRegion": "eu-west-1"
    })).collect::<Vec<_>>()})
}

fn message(conversation: &str, sid: &str, body: &str) -> String {
    QueueMessage::Message(MessageEvent {
        conversation_sid: conversation.into(),
        message_sid: sid.into(),
        author: "sam".into(),
        body: body.into(),
        date_created: "2026-11-22T10:00:00.000Z".into(),
        index: None,
    })
    .to_json()
}

/// Moto with a stack's settings for the notifier (no issuer: it verifies no tokens), its
/// table and its two queues.
struct Deployment {
    moto: Moto,
    stack: String,
    ssm: aws_sdk_ssm::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    queue_url: String,
    delay_url: String,
}

impl Deployment {
    async fn start(prefix: &str) -> Self {
        let moto = Moto::start();
        let stack = unique(prefix);
        let ssm = moto.ssm().await;
        let jwks = "https://issuer.example/jwks.json";
        put_settings(&ssm, &stack, jwks, test_support::API_SECRET).await;
        put_notification_settings(&ssm, &stack).await;
        let dynamodb = moto.dynamodb().await;
        aws_ports::create_table(&dynamodb, &stack).await.unwrap();
        let (queue_url, delay_url) = moto.notify_queues(&stack).await;
        Self {
            moto,
            stack,
            ssm,
            dynamodb,
            queue_url,
            delay_url,
        }
    }

    /// The notify function's environment, Twilio's Conversations API at `twilio`.
    fn env(&self, twilio: &TwilioStandIn) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        env.extend([
            ("STACK_NAME", self.stack.clone()),
            ("NOTIFICATIONS_TABLE", self.stack.clone()),
            ("NOTIFY_QUEUE_URL", self.queue_url.clone()),
            ("NOTIFY_DELAY_QUEUE_URL", self.delay_url.clone()),
            ("TWILIO_API_BASE_URL", twilio.base_url()),
        ]);
        env
    }
}

#[tokio::test]
async fn emails_an_offline_subscriber_and_reports_failed_records() {
    let deployment = Deployment::start("notify").await;
    let stack = &deployment.stack;
    let twilio = TwilioStandIn::start().await;
    twilio.add_conversation("general", "{}");
    twilio.add_participant("general", "alex");
    twilio.set_online("alex", Some(false));
    let conversation = twilio.conversation_sid("general").unwrap();
    let sendgrid = SendGridStandIn::start().await;

    // alex subscribed and confirmed, as the other functions leave it.
    let table = aws_ports::DynamoStore::new(deployment.dynamodb.clone(), stack.clone());
    let email = EmailAddress::parse("alex@example.org").unwrap();
    store::write_over(
        &table,
        &keys::subscription("general", "alex"),
        &Subscription {
            context: "general".into(),
            identity: "alex".into(),
            email: email.clone(),
            created_at: 1,
            // Made by the old integration: its address confirmation still counts.
            per_identity: false,
        },
    )
    .await
    .unwrap();
    store::write_over(
        &table,
        &keys::old_confirmation(&email),
        &EmailRecord {
            email: email.clone(),
            verified: true,
        },
    )
    .await
    .unwrap();

    let emulator = Emulator::start();
    let mut env = deployment.env(&twilio);
    env.push(("SENDGRID_API_BASE_URL", sendgrid.base_url()));
    let function = Function::of(BINARY, &emulator, &env);

    // SendGrid is down: the record is reported failed, and so is the one behind it in the
    // batch (same conversation: order matters).
    sendgrid.fail_next(503, 3);
    let first = message(
        &conversation,
        "IM00000000000000000000000000000001",
        "See you at the depot",
    );
    let second = message(
        &conversation,
        "IM00000000000000000000000000000002",
        "Bring the forms",
    );
    let answer = emulator
        .invoke(
            "notify",
            &sqs_event(&[("m1", first.clone()), ("m2", second.clone())]),
        )
        .await
        .value();
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]),
        "{answer}"
    );
    assert!(sendgrid.sent_to("alex@example.org").is_empty());

    // SQS delivers them again, with a record that is not ours: one email, nothing failed.
    let answer = emulator
        .invoke(
            "notify",
            &sqs_event(&[
                ("m1", first),
                ("m2", second),
                ("m5", "not a notifier message".into()),
            ]),
        )
        .await
        .value();
    assert_eq!(
        answer["batchItemFailures"],
        json!([]),
        "{answer} {}",
        function.output()
    );
    let sent = sendgrid.sent_to("alex@example.org");
    assert_eq!(
        sent.len(),
        1,
        "the second message folds into the window's next email"
    );
    assert!(sent[0].text.contains("See you at the depot"));

    // Access ends in Twilio (the platform dropped the context): the next message is not
    // emailed, and the subscription is gone.
    twilio.remove_participant("general", "alex");
    let third = message(
        &conversation,
        "IM00000000000000000000000000000003",
        "Members only from here",
    );
    let answer = emulator
        .answer("notify", &sqs_event(&[("m3", third)]))
        .await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(sendgrid.sent_to("alex@example.org").len(), 1);
    let subscription = table
        .get(&keys::subscription("general", "alex"))
        .await
        .unwrap();
    assert!(
        subscription.is_none(),
        "the subscription ended with the access"
    );

    let logs = function.output();
    assert!(logs.contains("message notified"), "{logs}");
    assert!(!logs.contains(test_support::SENDGRID_API_KEY), "{logs}");
}

/// Text messages: one for the offline subscriber, none for the author, none more in the
/// window; Twilio's 21610 (the number replied STOP) ends the number's text subscriptions.
#[tokio::test]
async fn texts_an_offline_subscriber_once_and_a_stop_ends_the_numbers_subscriptions() {
    use context_chat::notifications::PhoneNumber;
    use context_chat::notifications::SmsSubscription;
    use context_chat::notifications::phones::Phones;

    let deployment = Deployment::start("notify-sms").await;
    let (stack, ssm) = (&deployment.stack, &deployment.ssm);
    test_support::put_sms_settings(ssm, stack).await;
    let twilio = TwilioStandIn::start().await;
    for context in ["general", "random"] {
        twilio.add_conversation(context, "{}");
        twilio.add_participant(context, "alex");
        twilio.add_participant(context, "sam");
    }
    twilio.set_online("alex", Some(false));
    twilio.set_online("sam", Some(false));
    let sms = test_support::SmsStandIn::start().await;

    // alex and sam subscribed both contexts by text and verified their numbers, as the
    // other functions leave it.
    let table = std::sync::Arc::new(aws_ports::DynamoStore::new(
        deployment.dynamodb.clone(),
        stack.clone(),
    ));
    let phones = Phones::new(table.clone());
    for (who, number) in [("alex", "+14155550101"), ("sam", "+14155550102")] {
        let phone = PhoneNumber::parse(number).unwrap();
        for context in ["general", "random"] {
            phones.add_context(&phone, who, context).await.unwrap();
            store::write_over(
                table.as_ref(),
                &keys::sms_subscription(context, who),
                &SmsSubscription {
                    context: context.into(),
                    identity: who.into(),
                    phone: phone.clone(),
                    created_at: 1,
                },
            )
            .await
            .unwrap();
        }
        phones.verified(&phone, who).await.unwrap();
    }

    let emulator = Emulator::start();
    let mut env = deployment.env(&twilio);
    env.extend(sms.base_url_env());
    let function = Function::of(BINARY, &emulator, &env);
    let general = twilio.conversation_sid("general").unwrap();
    let random = twilio.conversation_sid("random").unwrap();

    let answer = emulator
        .invoke(
            "notify",
            &sqs_event(&[
                (
                    "m1",
                    message(&general, "IM00000000000000000000000000000001", "Truck at 6"),
                ),
                (
                    "m2",
                    message(
                        &general,
                        "IM00000000000000000000000000000002",
                        "Bring water",
                    ),
                ),
            ]),
        )
        .await
        .value();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let sent = sms.sent();
    assert_eq!(
        sent.len(),
        1,
        "one text in the window, none for the author: {sent:?}"
    );
    assert_eq!(sent[0].to, "+14155550101");
    assert_eq!(
        sent[0].body,
        "sam in \"general\": Truck at 6\nReply STOP to stop"
    );

    sms.reply_stop("+14155550101");
    let answer = emulator
        .invoke(
            "notify",
            &sqs_event(&[(
                "m3",
                message(&random, "IM00000000000000000000000000000003", "Hello"),
            )]),
        )
        .await
        .value();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(sms.sent().len(), 1);
    for context in ["general", "random"] {
        let alex = keys::sms_subscription(context, "alex");
        assert!(table.get(&alex).await.unwrap().is_none(), "{context}");
        let sam = keys::sms_subscription(context, "sam");
        assert!(table.get(&sam).await.unwrap().is_some(), "{context}");
    }
    // L5: the number is marked: no code goes to it until it texts START.
    let alexs_stop = keys::sms_stopped(&PhoneNumber::parse("+14155550101").unwrap());
    assert!(table.get(&alexs_stop).await.unwrap().is_some());

    // STOP and START texted back, as the webhook queues them: sam's STOP ends sam's
    // subscriptions at once; alex's START lifts the mark.
    let reply = |sid: &str, from: &str, opt_in: bool| {
        QueueMessage::SmsReply(context_chat::notifications::webhook::SmsReply {
            message_sid: sid.into(),
            from: PhoneNumber::parse(from).unwrap(),
            opt_in,
        })
        .to_json()
    };
    let answer = emulator
        .invoke(
            "notify",
            &sqs_event(&[
                (
                    "r1",
                    reply("SM00000000000000000000000000000001", "+14155550102", false),
                ),
                (
                    "r2",
                    reply("SM00000000000000000000000000000002", "+14155550101", true),
                ),
            ]),
        )
        .await
        .value();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert!(table.get(&alexs_stop).await.unwrap().is_none());
    let sams_stop = keys::sms_stopped(&PhoneNumber::parse("+14155550102").unwrap());
    assert!(table.get(&sams_stop).await.unwrap().is_some());
    for context in ["general", "random"] {
        let sam = keys::sms_subscription(context, "sam");
        assert!(table.get(&sam).await.unwrap().is_none(), "{context}");
    }

    let logs = function.output();
    assert!(logs.contains("the number replied STOP"), "{logs}");
    assert!(logs.contains("the number texted START"), "{logs}");
    assert!(!logs.contains("4155550101"), "{logs}");
    assert!(!logs.contains("4155550102"), "{logs}");
    let metrics = function.metrics(3);
    assert!(
        metrics.iter().any(|m| m.get("SmsStopped").is_some()),
        "{metrics:?}"
    );
    // "Bring water" folded into alex's pending text: counted for texts, not emails.
    assert!(
        metrics
            .iter()
            .any(|m| m["Channel"] == "sms" && m["NotificationsFolded"] == 1),
        "{metrics:?}"
    );
    assert!(
        metrics.iter().all(|m| m["Channel"] != "email"),
        "{metrics:?}"
    );
}
