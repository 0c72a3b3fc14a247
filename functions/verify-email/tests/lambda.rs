//! verify-email under cargo lambda's local runtime: settings in SSM on moto (the issuer and
//! the link secret, nothing of Twilio's), codes in the table.

use std::path::Path;

use context_chat::notifications::EmailAddress;
use context_chat::notifications::codes::{self, CodeKey, Confirmation};
use context_chat::notifications::store::{self, Key};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{
    Emulator, Function, Issuer, LINK_SECRET, Moto, TestKey, appsync_event, claims, jwks,
    put_parameter, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_verify-email");

fn event(arguments: Value) -> Value {
    appsync_event("Mutation", "verifyEmail", arguments)
}

/// A code pending for `identity` at `email`, as enable-channel-notifications leaves it.
async fn pending_code(store: &aws_ports::DynamoStore, identity: &str, email: &str) -> String {
    let email = EmailAddress::parse(email).unwrap();
    let code = codes::new_code().unwrap();
    let key = CodeKey::new(&SecretString::from(LINK_SECRET));
    let (record, _) = codes::issue(
        None,
        (identity, &email),
        key.hash(identity, &email, &code),
        context_chat::context_token::now_unix(),
    );
    let key = Key::Confirmation {
        email,
        identity: identity.into(),
    };
    assert!(
        store::write::<Confirmation>(store, &key, None, &record.unwrap(), None)
            .await
            .unwrap()
    );
    code
}

fn wrong(code: &str) -> &'static str {
    if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    }
}

#[tokio::test]
async fn confirms_with_the_right_code_only_and_for_the_token_s_identity() {
    let moto = Moto::start();
    let stack = unique("verify");
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let key = TestKey::es256("k1");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let ssm = moto.ssm().await;
    put_parameter(
        &ssm,
        &format!("/{stack}/chat/jwks.json"),
        &issuer.url(),
        false,
    )
    .await;
    put_parameter(
        &ssm,
        &format!("/{stack}/notifications/linkSecret"),
        LINK_SECRET,
        true,
    )
    .await;
    let store = aws_ports::DynamoStore::new(dynamodb, stack.clone());
    let code = pending_code(&store, "alex", "alex@example.org").await;
    let sams = pending_code(&store, "sam", "sam@example.org").await;

    let emulator = Emulator::start();
    let mut env = moto.env();
    env.push(("STACK_NAME", stack.clone()));
    env.push(("NOTIFICATIONS_TABLE", stack));
    let _function = Function::start(Path::new(BINARY), "verify-email", &emulator, &env);
    let verify = |arguments: Value| {
        let emulator = &emulator;
        async move {
            emulator
                .invoke("verify-email", &event(arguments))
                .await
                .value()
        }
    };

    assert_eq!(
        verify(json!({"email": "alex@example.org", "code": wrong(&code)})).await,
        json!(false)
    );
    assert_eq!(
        verify(json!({"email": "Alex@Example.org", "code": code})).await,
        json!(true)
    );
    // Item 2: with a token, only the identity that asked for the code confirms it.
    let mallory = key.token(&claims("mallory", &["general"]));
    assert_eq!(
        verify(json!({"email": "sam@example.org", "code": sams, "token": mallory})).await,
        json!(false)
    );
    let sam = key.token(&claims("sam", &["general"]));
    assert_eq!(
        verify(json!({"email": "sam@example.org", "code": sams, "token": sam})).await,
        json!(true)
    );
}

#[tokio::test]
async fn item_13_without_a_link_secret_it_says_not_configured_without_naming_the_parameter() {
    let moto = Moto::start();
    let stack = unique("verify-unset");
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let issuer = Issuer::start(jwks(&[&TestKey::es256("k1")])).await;
    let ssm = moto.ssm().await;
    put_parameter(
        &ssm,
        &format!("/{stack}/chat/jwks.json"),
        &issuer.url(),
        false,
    )
    .await;

    let emulator = Emulator::start();
    let mut env = moto.env();
    env.push(("STACK_NAME", stack.clone()));
    env.push(("NOTIFICATIONS_TABLE", stack));
    let _function = Function::start(Path::new(BINARY), "verify-email", &emulator, &env);
    let (error_type, message) = emulator
        .invoke(
            "verify-email",
            &event(json!({"email": "alex@example.org", "code": "12345678"})),
        )
        .await
        .error();
    assert_eq!(error_type, "InternalError");
    assert!(message.contains("not configured"), "{message}");
    assert!(
        !message.contains("linkSecret") && !message.contains("notifications/"),
        "{message}"
    );
}
