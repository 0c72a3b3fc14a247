//! enable-channel-notifications and, through the library on the same table,
//! the code it sends: under cargo lambda's local runtime, settings in SSM on moto.

use std::path::Path;

use serde_json::{Value, json};
use test_support::{
    Emulator, Function, Issuer, Moto, SendGridStandIn, TestKey, appsync_event, claims, jwks,
    put_notification_settings, put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_enable-channel-notifications");

fn event(arguments: Value) -> Value {
    appsync_event("Mutation", "enableChannelNotifications", arguments)
}

#[tokio::test]
async fn subscribes_for_a_context_of_the_token_and_sends_a_code() {
    let moto = Moto::start();
    let key = TestKey::es256("k1");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let stack = unique("enable");
    let ssm = moto.ssm().await;
    put_settings(&ssm, &stack, &issuer.url(), "secret").await;
    put_notification_settings(&ssm, &stack).await;
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let sendgrid = SendGridStandIn::start().await;
    let emulator = Emulator::start();
    let mut env = moto.env();
    env.extend([
        ("STACK_NAME", stack.clone()),
        ("NOTIFICATIONS_TABLE", stack.clone()),
        ("SENDGRID_API_BASE_URL", sendgrid.base_url()),
    ]);
    let function = Function::start(
        Path::new(BINARY),
        "enable-channel-notifications",
        &emulator,
        &env,
    );
    let token = key.token(&claims("alex", &["general"]));

    let answer = emulator
        .invoke(
            "enable-channel-notifications",
            &event(json!({"channel": "general", "email": "alex@example.org", "token": token})),
        )
        .await
        .value();
    assert_eq!(answer, json!({"emailVerified": false}));
    let sent = sendgrid.sent_to("alex@example.org");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("confirmation code"));
    let items = dynamodb
        .scan()
        .table_name(&stack)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(
        items.len(),
        3,
        "the subscription, alex's confirmation of the address, alex's count of codes sent"
    );

    let (error_type, _) = emulator
        .invoke(
            "enable-channel-notifications",
            &event(json!({"channel": "SHIPMENT-42", "email": "alex@example.org", "token": token})),
        )
        .await
        .error();
    assert_eq!(error_type, "AccessDenied");
    let (error_type, message) = emulator
        .invoke(
            "enable-channel-notifications",
            &event(json!({"channel": "general", "email": "alex", "token": token})),
        )
        .await
        .error();
    assert_eq!(error_type, "BadRequest", "{message}");
    let items = dynamodb
        .scan()
        .table_name(&stack)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 3, "refused calls change nothing");

    let code = sent[0].text.split("code is: ").nth(1).unwrap()[..8].to_owned();
    let logs = function.output();
    assert!(!logs.contains(&code), "the code is never logged");
    assert!(!logs.contains(&token));
}
