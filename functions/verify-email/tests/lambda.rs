//! verify-email under cargo lambda's local runtime: settings in SSM on moto (the issuer and
//! the link secret, nothing of Twilio's), codes in the table.

use context_chat::notifications::EmailAddress;
use context_chat::notifications::codes::{self, CodeKey, Confirmation};
use context_chat::notifications::keys;
use context_chat::notifications::store::{self};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{Issuer, LINK_SECRET, Moto, TestKey, claims, jwks, put_parameter, unique};

const BINARY: &str = env!("CARGO_BIN_EXE_verify-email");

fn event(arguments: Value) -> Value {
    test_support::mutation("verifyEmail", arguments)
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
    let key = keys::confirmation(&email, identity);
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
    let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
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

    let (emulator, _function) = moto.function(BINARY, &stack, Some(&stack), []);
    let verify = |arguments: Value| {
        let emulator = &emulator;
        async move { emulator.answer("verify-email", &event(arguments)).await }
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
async fn without_a_link_secret_it_says_not_configured_without_naming_the_parameter() {
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

    let (emulator, _function) = moto.function(BINARY, &stack, Some(&stack), []);
    let (error_type, message) = emulator
        .refusal(
            "verify-email",
            &event(json!({"email": "alex@example.org", "code": "12345678"})),
        )
        .await;
    assert_eq!(error_type, "InternalError");
    assert!(message.contains("not configured"), "{message}");
    assert!(
        !message.contains("linkSecret") && !message.contains("notifications/"),
        "{message}"
    );
}

/// verifyPhone on the same function: Verify checks the code (the SMS stand-in), only for
/// the identity that asked for it, and the number is then verified for that identity.
#[tokio::test]
async fn verify_phone_checks_the_code_with_verify_for_the_identity_that_asked() {
    use context_chat::notifications::PhoneNumber;
    use context_chat::notifications::phones::Phones;
    use context_chat::notifications::sms::SmsGateway;
    use context_chat::notifications::twilio_sms::{TwilioSms, TwilioSmsConfig};

    let moto = Moto::start();
    let stack = unique("verify-phone");
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
    let ssm = moto.ssm().await;
    test_support::put_settings(&ssm, &stack, &issuer.url(), test_support::API_SECRET).await;
    put_parameter(
        &ssm,
        &format!("/{stack}/notifications/linkSecret"),
        LINK_SECRET,
        true,
    )
    .await;
    test_support::put_sms_settings(&ssm, &stack).await;
    let sms = test_support::SmsStandIn::start().await;

    // As enable-channel-notifications leaves it: a code sent by Verify, alex's record.
    let phone = PhoneNumber::parse("+14155550123").unwrap();
    let base = url::Url::parse(&sms.base_url()).unwrap();
    let secret = SecretString::from(test_support::API_SECRET);
    let gateway = TwilioSms::new(
        reqwest::Client::new(),
        TwilioSmsConfig {
            account_sid: test_support::ACCOUNT_SID,
            api_key_sid: test_support::API_KEY_SID,
            api_secret: &secret,
            verify_service_sid: test_support::sms::VERIFY_SERVICE_SID,
            messaging_service_sid: test_support::sms::MESSAGING_SERVICE_SID,
            verify_base_url: &base,
            messaging_base_url: &base,
        },
        Default::default(),
    );
    gateway.start_verification(&phone).await.unwrap();
    let store = std::sync::Arc::new(aws_ports::DynamoStore::new(dynamodb, stack.clone()));
    let phones = Phones::new(store.clone());
    phones.add_context(&phone, "alex", "general").await.unwrap();
    let code = sms.last_code(phone.as_str()).unwrap();

    let (emulator, function) = moto.function(BINARY, &stack, Some(&stack), sms.base_url_env());
    let verify_phone = |code: &str, who: &str| {
        test_support::mutation(
            "verifyPhone",
            json!({"phone": "+1 415 555 0123", "code": code, "token": key.token(&claims(who, &["general"]))}),
        )
    };

    let (error_type, _) = emulator
        .refusal("verify-email", &verify_phone(&code, "mallory"))
        .await;
    assert_eq!(error_type, "BadRequest", "mallory asked for no code");
    assert_eq!(
        emulator
            .answer("verify-email", &verify_phone(wrong(&code), "alex"))
            .await,
        json!(false)
    );
    assert!(!phones.is_verified(&phone, "alex").await.unwrap());
    assert_eq!(
        emulator
            .answer("verify-email", &verify_phone(&code, "alex"))
            .await,
        json!(true)
    );
    assert!(phones.is_verified(&phone, "alex").await.unwrap());
    assert!(!phones.is_verified(&phone, "mallory").await.unwrap());
    let logs = function.output();
    assert!(!logs.contains("4155550123"), "{logs}");
}

/// L7: a record that no longer parses is logged by its kind and a short hash of its key,
/// never by the key (which holds the number) nor by the value serde did not expect.
#[tokio::test]
async fn a_damaged_record_is_logged_by_kind_and_hash_never_by_number() {
    use context_chat::notifications::PhoneNumber;
    use context_chat::store::{Expect, Store, Stored};

    let moto = Moto::start();
    let stack = unique("damaged");
    let dynamodb = moto.dynamodb().await;
    aws_ports::create_table(&dynamodb, &stack).await.unwrap();
    let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
    let ssm = moto.ssm().await;
    test_support::put_settings(&ssm, &stack, &issuer.url(), test_support::API_SECRET).await;
    let secret = format!("/{stack}/notifications/linkSecret");
    put_parameter(&ssm, &secret, LINK_SECRET, true).await;
    test_support::put_sms_settings(&ssm, &stack).await;
    let sms = test_support::SmsStandIn::start().await;
    let phone = PhoneNumber::parse("+14155550123").unwrap();
    let record = keys::phone(&phone, "alex");
    let damaged = json!({"phone": phone.as_str(), "identity": "alex", "verified": phone.as_str()});
    let table = aws_ports::DynamoStore::new(dynamodb, stack.clone());
    let stored = Stored {
        version: 3,
        fields: damaged.as_object().unwrap().clone(),
        expires_at: None,
    };
    assert!(table.put(&record, stored, Expect::Anything).await.unwrap());

    let (emulator, function) = moto.function(BINARY, &stack, Some(&stack), sms.base_url_env());
    let token = key.token(&claims("alex", &["general"]));
    let (error_type, message) = emulator
        .invoke(
            "verify-email",
            &test_support::mutation(
                "verifyPhone",
                json!({"phone": phone.as_str(), "code": "123456", "token": token}),
            ),
        )
        .await
        .error();
    assert_eq!(error_type, "InternalError", "{message}");
    assert!(message.contains("damaged"), "{message}");
    assert!(function.wait_for_output("does not parse", std::time::Duration::from_secs(5)));
    let logs = function.output();
    let line = logs.lines().find(|l| l.contains("does not parse")).unwrap();
    assert!(line.contains(&record.fingerprint()), "{line}");
    assert!(line.contains("\"key_kind\":\"phone\""), "{line}");
    for text in [&logs, &message] {
        assert!(!text.contains("4155550123"), "{text}");
    }
}
