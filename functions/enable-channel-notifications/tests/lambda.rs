//! enable-channel-notifications and, through the library on the same table,
//! the code it sends: under cargo lambda's local runtime, settings in SSM on moto.

use serde_json::{Value, json};
use test_support::{SendGridStandIn, Stack, TestKey, claims, put_notification_settings};

const BINARY: &str = env!("CARGO_BIN_EXE_enable-channel-notifications");

/// A stack with notifications' settings and its table, context tokens from `key`.
async fn deployment(prefix: &str) -> (Stack, test_support::aws_sdk_dynamodb::Client) {
    let stack = Stack::start(prefix, TestKey::es256("k1"), test_support::API_SECRET).await;
    put_notification_settings(&stack.moto.ssm().await, &stack.name).await;
    let dynamodb = stack.moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack.name)
        .await
        .unwrap();
    (stack, dynamodb)
}

fn event(arguments: Value) -> Value {
    test_support::mutation("enableChannelNotifications", arguments)
}

#[tokio::test]
async fn subscribes_for_a_context_of_the_token_and_sends_a_code() {
    let (deployment, dynamodb) = deployment("enable").await;
    let (moto, key, stack) = (&deployment.moto, &deployment.key, &deployment.name);
    let sendgrid = SendGridStandIn::start().await;
    let (emulator, function) = moto.function(
        BINARY,
        stack,
        Some(stack),
        [("SENDGRID_API_BASE_URL", sendgrid.base_url())],
    );
    let token = key.token(&claims("alex", &["general"]));

    let answer = emulator
        .answer(
            "enable-channel-notifications",
            &event(json!({"channel": "general", "email": "alex@example.org", "token": token})),
        )
        .await;
    assert_eq!(answer, json!({"emailVerified": false}));
    let sent = sendgrid.sent_to("alex@example.org");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("confirmation code"));
    let items = test_support::scan(&dynamodb, stack).await;
    assert_eq!(
        items.len(),
        3,
        "the subscription, alex's confirmation of the address, alex's count of codes sent"
    );

    let (error_type, _) = emulator
        .refusal(
            "enable-channel-notifications",
            &event(json!({"channel": "SHIPMENT-42", "email": "alex@example.org", "token": token})),
        )
        .await;
    assert_eq!(error_type, "AccessDenied");
    let (error_type, message) = emulator
        .refusal(
            "enable-channel-notifications",
            &event(json!({"channel": "general", "email": "alex", "token": token})),
        )
        .await;
    assert_eq!(error_type, "BadRequest", "{message}");
    let items = test_support::scan(&dynamodb, stack).await;
    assert_eq!(items.len(), 3, "refused calls change nothing");

    let code = sent[0].text.split("code is: ").nth(1).unwrap()[..8].to_owned();
    let logs = function.output();
    assert!(!logs.contains(&code), "the code is never logged");
    assert!(!logs.contains(&token));
}

#[tokio::test]
async fn subscribes_a_phone_with_a_code_from_verify_and_stores_nothing_but_the_days_count_when_refused()
 {
    let (deployment, dynamodb) = deployment("enable-sms").await;
    let (moto, key, stack) = (&deployment.moto, &deployment.key, &deployment.name);
    test_support::put_sms_settings(&moto.ssm().await, stack).await;
    let sms = test_support::SmsStandIn::start().await;
    let (emulator, function) = moto.function(BINARY, stack, Some(stack), sms.base_url_env());
    let token = key.token(&claims("alex", &["general"]));
    let sms_event = |phone: &str| {
        test_support::mutation(
            "enableChannelSmsNotifications",
            json!({"channel": "general", "phone": phone, "token": token}),
        )
    };
    // Every item but the day's SMS budget counters, which count each code asked of Verify,
    // refused or not (ADR 016: a budget caps what may have been paid for).
    let items = || async {
        let all = test_support::scan(&dynamodb, stack).await;
        let counters = all
            .iter()
            .filter(|item| {
                let key = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                key("pk").starts_with("SMSBUDGET#") || key("sk").starts_with("SPENT#")
            })
            .count();
        all.len() - counters
    };

    let (error_type, _) = emulator
        .refusal("enable-channel-notifications", &sms_event("0041 79 123"))
        .await;
    assert_eq!(error_type, "BadRequest");
    assert!(sms.requests().is_empty(), "refused before Twilio");
    let (error_type, message) = emulator
        .refusal(
            "enable-channel-notifications",
            &sms_event(test_support::sms::LANDLINE),
        )
        .await;
    assert_eq!(error_type, "BadRequest");
    assert!(message.contains("landline"), "{message}");
    assert_eq!(
        items().await,
        0,
        "nothing stored when Verify refuses the send"
    );

    let answer = emulator
        .answer(
            "enable-channel-notifications",
            &sms_event("+44 7700-900123"),
        )
        .await;
    assert_eq!(answer, json!({"phoneVerified": false}));
    assert_eq!(sms.codes_sent("+447700900123"), 1);
    assert_eq!(
        items().await,
        3,
        "the text subscription, alex's record of the number, alex's count of codes"
    );
    let logs = function.output();
    assert!(!logs.contains("7700900123"), "{logs}");
    assert!(!logs.contains(test_support::API_SECRET), "{logs}");
}
