//! verify-email under cargo lambda's local runtime: no settings at all, only the table.

use std::path::Path;

use context_chat::notifications::EmailAddress;
use context_chat::notifications::codes::{self, Confirmation};
use context_chat::notifications::store::{self, Key};
use serde_json::{Value, json};
use test_support::{Emulator, Function, Moto, appsync_event, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_verify-email");

fn event(arguments: Value) -> Value {
    appsync_event("Mutation", "verifyEmail", arguments)
}

#[tokio::test]
async fn confirms_with_the_right_code_only() {
    let moto = Moto::start();
    let table = unique("verify");
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &table).await.unwrap();
    let email = EmailAddress::parse("alex@example.org").unwrap();
    let code = codes::new_code().unwrap();
    let (record, _) = codes::issue(
        None,
        ("alex", &email),
        codes::hash("alex", &email, &code),
        context_chat::context_token::now_unix(),
    );
    let store = aws_ports::DynamoStore::new(dynamodb, table.clone());
    let key = Key::Confirmation {
        email,
        identity: "alex".into(),
    };
    assert!(
        store::write::<Confirmation>(&store, &key, None, &record.unwrap(), None)
            .await
            .unwrap()
    );

    let emulator = Emulator::start();
    let mut env = moto.env();
    // No STACK_NAME: this function reads no settings.
    env.push(("NOTIFICATIONS_TABLE", table));
    let _function = Function::start(Path::new(BINARY), "verify-email", &emulator, &env);

    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let answer = emulator
        .invoke(
            "verify-email",
            &event(json!({"email": "alex@example.org", "code": wrong})),
        )
        .await
        .value();
    assert_eq!(answer, json!(false));
    let answer = emulator
        .invoke(
            "verify-email",
            &event(json!({"email": "Alex@Example.org", "code": code})),
        )
        .await
        .value();
    assert_eq!(answer, json!(true));
}
