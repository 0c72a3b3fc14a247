//! The create-chat-token function under cargo lambda's local runtime, with its settings in
//! SSM on moto, the issuer's JWKS on loopback and Twilio's stand-in for Conversations.

use context_chat::notifications::EmailAddress;
use context_chat::notifications::Subscription;
use context_chat::notifications::keys;
use context_chat::notifications::store::{self, Store};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use test_support::{
    ACCOUNT_SID, API_KEY_SID, API_SECRET, CHAT_SERVICE_SID, Emulator, Fault, Function, Issuer,
    Moto, Stack, TestKey, TwilioStandIn, claims, put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_create-chat-token");

fn event(arguments: Value) -> Value {
    test_support::mutation("createChatToken", arguments)
}

#[tokio::test]
async fn mints_a_twilio_token_for_a_good_context_token_and_refuses_the_rest() {
    let deployment = Stack::start("create", TestKey::eddsa("platform-ed"), API_SECRET).await;
    let Stack {
        moto,
        key,
        name: stack,
        ..
    } = &deployment;
    let (twilio, emulator, function) = moto.function_on_twilio(BINARY, stack, None).await;

    let token = key.token(&claims("alex", &["general"]));
    let answer = emulator
        .answer(
            "create-chat-token",
            &event(json!({"deviceId": "phone-1", "token": token})),
        )
        .await;
    let access = answer
        .as_str()
        .expect("the field's value is the token string");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let minted = jsonwebtoken::decode::<Value>(
        access,
        &DecodingKey::from_secret(API_SECRET.as_bytes()),
        &validation,
    )
    .expect("signed with the API key secret from SSM")
    .claims;
    assert_eq!(minted["sub"], ACCOUNT_SID);
    assert_eq!(minted["iss"], API_KEY_SID);
    assert_eq!(minted["grants"]["identity"], "alex");
    assert_eq!(minted["grants"]["chat"]["service_sid"], CHAT_SERVICE_SID);
    assert_eq!(
        minted["grants"]["chat"]["endpoint_id"],
        "dachat:alex:phone-1"
    );
    // By the time the token is returned, alex is in the conversation of its context.
    assert_eq!(twilio.memberships("alex"), ["general"]);

    let (error_type, message) = emulator
        .refusal("create-chat-token", &event(json!({"token": token})))
        .await;
    assert_eq!(error_type, "BadRequest");
    assert!(message.contains("deviceId"), "{message}");

    // Same kid, another key: a forgery.
    let forged = TestKey::eddsa("platform-ed").token(&claims("alex", &["general"]));
    let (error_type, message) = emulator
        .refusal(
            "create-chat-token",
            &event(json!({"deviceId": "d", "token": forged})),
        )
        .await;
    assert_eq!(error_type, "AccessDenied", "{message}");

    // Twilio refuses a step: an InternalError naming it, and no token.
    twilio.fail(
        Fault::new(400, 50350).on(test_support::Method::POST, "/ConversationWithParticipants"),
    );
    let (error_type, message) = emulator
        .invoke(
            "create-chat-token",
            &event(json!({"deviceId": "d", "token": key.token(&claims("alex", &["SHIPMENT-9"]))})),
        )
        .await
        .error();
    assert_eq!(error_type, "InternalError", "{message}");
    assert!(
        message.contains("conversation of context SHIPMENT-9"),
        "{message}"
    );

    let logs = function.output();
    assert!(!logs.contains(access), "the access token is never logged");
    assert!(!logs.contains(&token) && !logs.contains(API_SECRET));
    assert!(logs.contains("chat token issued"), "{logs}");
    assert!(logs.contains("conversations provisioned"), "{logs}");

    // One EMF line per invocation, in order, with what each did.
    let lines = function.metrics(4);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        assert_eq!(line["Function"], "create-chat-token");
        assert_eq!(line["Requests"], 1);
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(directives.iter().all(|d| d["Namespace"] == "ContextChat"));
        let text = line.to_string();
        assert!(
            !text.contains("alex") && !text.contains(&token[..24]) && !text.contains("phone-1")
        );
    }
    let [minted, no_device, forged, refused] = &lines[..] else {
        unreachable!()
    };
    // First time: look (the user's conversations, the context's), then one create with
    // alex in it; 3 Twilio requests, each timed.
    assert_eq!(minted["ChatTokensIssued"], 1);
    assert_eq!(minted["ConversationsCreated"], 1);
    assert_eq!(minted["ParticipantsJoined"], 1);
    assert_eq!(minted["TwilioRequests"], 3);
    assert_eq!(minted["TwilioLatency"].as_array().unwrap().len(), 3);
    assert!(minted.get("ErrorType").is_none());
    assert_eq!(no_device["ErrorType"], "BadRequest");
    assert_eq!(no_device["Errors"], 1);
    assert!(
        no_device.get("TokensRefused").is_none(),
        "the token was not looked at"
    );
    assert_eq!(forged["ErrorType"], "AccessDenied");
    assert_eq!(forged["TokensRefused"], 1);
    assert!(forged.get("TwilioRequests").is_none());
    assert_eq!(refused["ErrorType"], "InternalError");
    assert_eq!(refused["Errors"], 1);
    assert!(refused.get("ChatTokensIssued").is_none());
}

/// The function on a table, with its settings (and `extra` parameters) in SSM and Twilio's
/// stand-in.
struct WithTable {
    _moto: Moto,
    key: TestKey,
    _issuer: Issuer,
    twilio: TwilioStandIn,
    emulator: Emulator,
    store: std::sync::Arc<aws_ports::DynamoStore>,
    function: Function,
}

impl WithTable {
    async fn start(prefix: &str, extra: &[(&str, &str)]) -> Self {
        let moto = Moto::start();
        let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
        let stack = unique(prefix);
        let ssm = moto.ssm().await;
        put_settings(&ssm, &stack, &issuer.url(), API_SECRET).await;
        for (name, value) in extra {
            // SecureString where the product says, as `chatctl put-params` writes them.
            let secure =
                context_chat::settings::Param::from_ssm_suffix(name).is_some_and(|p| p.is_secret());
            test_support::put_parameter(&ssm, &format!("/{stack}/{name}"), value, secure).await;
        }
        let dynamodb = moto.dynamodb().await;
        aws_ports::create_table(&dynamodb, &stack).await.unwrap();
        let store = std::sync::Arc::new(aws_ports::DynamoStore::new(dynamodb, stack.clone()));
        let (twilio, emulator, function) =
            moto.function_on_twilio(BINARY, &stack, Some(&stack)).await;
        Self {
            _moto: moto,
            key,
            _issuer: issuer,
            twilio,
            emulator,
            store,
            function,
        }
    }
}

#[tokio::test]
async fn leaving_a_context_ends_its_email_subscription() {
    let world = WithTable::start("create-left", &[]).await;
    let (key, emulator, twilio, store) = (&world.key, &world.emulator, &world.twilio, &world.store);
    let create = |contexts: &[&str]| {
        let token = key.token(&claims("alex", contexts));
        async move {
            emulator
                .answer(
                    "create-chat-token",
                    &event(json!({"deviceId": "d", "token": token})),
                )
                .await
        }
    };

    assert!(create(&["general", "random"]).await.is_string());
    let subscription = |context: &str| keys::subscription(context, "alex");
    for context in ["general", "random"] {
        let record = Subscription {
            context: context.into(),
            identity: "alex".into(),
            email: EmailAddress::parse("alex@example.org").unwrap(),
            created_at: 1,
            per_identity: true,
        };
        store::write_over(store.as_ref(), &subscription(context), &record)
            .await
            .unwrap();
    }

    // The platform drops "general": alex leaves its conversation, and its emails stop.
    assert!(create(&["random"]).await.is_string());
    assert_eq!(twilio.memberships("alex"), ["random"]);
    assert!(store.get(&subscription("general")).await.unwrap().is_none());
    assert!(store.get(&subscription("random")).await.unwrap().is_some());
}

/// issueChatToken on the same function: a receipt on record in the table, `Conflict` for a
/// reused xid, and `TooManyRequests` past `/STACK/chat/tokensPerMinute` (here 3), counted in
/// the table across both fields.
#[tokio::test]
async fn issues_receipts_on_record_and_limits_minting() {
    let world = WithTable::start("create-ledger", &[("chat/tokensPerMinute", "3")]).await;
    let (key, emulator) = (&world.key, &world.emulator);
    let ledger = context_chat::ledger::Ledger::new(world.store.clone());
    let token = key.token(&claims("alex", &["general"]));
    let issue = |xid: &str| {
        test_support::mutation(
            "issueChatToken",
            json!({"deviceId": "phone-1", "token": token, "xid": xid}),
        )
    };
    test_support::early_in_a_minute().await;

    let receipt = emulator
        .answer("create-chat-token", &issue("order-1"))
        .await;
    assert_eq!(receipt["xid"], "order-1", "{receipt}");
    let minted = receipt["token"].as_str().unwrap();
    let record = ledger
        .get("order-1", None)
        .await
        .unwrap()
        .expect("on record");
    assert_eq!(
        record.token_sha256,
        context_chat::ledger::sha256_hex(minted)
    );
    assert_eq!(receipt["expiresAt"], json!(record.expires_at));
    assert_eq!(record.device_id.as_deref(), Some("phone-1"));

    let (error_type, _) = emulator
        .refusal("create-chat-token", &issue("order-1"))
        .await;
    assert_eq!(error_type, "Conflict");
    // The conflict counted (issue 30, L1); one more (createChatToken counts too), then the
    // limit.
    emulator
        .answer(
            "create-chat-token",
            &event(json!({"deviceId": "phone-1", "token": token})),
        )
        .await;
    let (error_type, message) = emulator
        .refusal("create-chat-token", &issue("order-4"))
        .await;
    assert_eq!(error_type, "TooManyRequests");
    assert!(message.contains("Try again in"), "{message}");
    assert_eq!(ledger.get("order-4", None).await.unwrap(), None);
    assert_eq!(ledger.of_identity("alex", 100).await.unwrap().len(), 2);
    assert!(!world.function.output().contains(minted));
}

/// createVirgilToken on the same function: the Virgil settings from SSM (the app key a
/// SecureString), the token Virgil's SDK would make for that second, on record as `virgil`.
#[tokio::test]
async fn makes_virgil_tokens_from_the_app_key_in_ssm() {
    use secrecy::ExposeSecret;
    let app_key = context_chat::virgil::generate_app_key().unwrap();
    let world = WithTable::start(
        "create-virgil",
        &[
            ("virgil/appId", "0123456789abcdef0123456789abcdef"),
            ("virgil/appKeyId", "fedcba9876543210fedcba9876543210"),
            ("virgil/tokenTTL", "600"),
            ("virgil/appKey", app_key.expose_secret()),
        ],
    )
    .await;
    let ledger = context_chat::ledger::Ledger::new(world.store.clone());
    let virgil = |identity: &str| {
        test_support::mutation(
            "createVirgilToken",
            json!({"token": world.key.token(&claims(identity, &["general"]))}),
        )
    };

    let answer = world
        .emulator
        .answer("create-chat-token", &virgil("alex"))
        .await;
    let token = answer.as_str().expect("the field's value is the token");
    let signer = context_chat::virgil::VirgilSigner::new(
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
        &app_key,
        600,
    )
    .unwrap();
    let payload = test_support::jwt_payload(token);
    assert_eq!(
        token,
        signer
            .mint("alex", payload["iat"].as_u64().unwrap())
            .unwrap()
    );
    let records = ledger.of_identity("alex", 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind, context_chat::ledger::Kind::Virgil);
    assert_eq!(records[0].expires_at, payload["exp"].as_u64().unwrap());
    // No Twilio work for a Virgil token.
    assert!(world.twilio.memberships("alex").is_empty());
    let logs = world.function.output();
    assert!(!logs.contains(app_key.expose_secret()) && !logs.contains(token));
}

/// Issue 34: a token's roles become the participant's conversation role; a newer token with
/// another role changes it with one Twilio request (the table says what was given); the same
/// roles again cost none.
#[tokio::test]
async fn a_tokens_roles_are_the_participants_and_a_change_costs_one_request() {
    use context_chat::twilio::service_setup as setup;
    let world = WithTable::start("create-roles", &[]).await;
    let (key, emulator, twilio) = (&world.key, &world.emulator, &world.twilio);
    twilio.add_conversation_role(
        setup::PARTICIPANT_ROLE,
        setup::PARTICIPANT_PERMISSIONS,
        true,
    );
    twilio.add_conversation_role(setup::READER_ROLE, setup::READER_PERMISSIONS, false);
    twilio.add_conversation_role(setup::MODERATOR_ROLE, setup::MODERATOR_PERMISSIONS, false);
    let create = |roles: Value| {
        let mut c = claims("alex", &["announcements", "general"]);
        c["roles"] = roles;
        let token = key.token(&c);
        async move {
            emulator
                .answer(
                    "create-chat-token",
                    &event(json!({"deviceId": "d", "token": token})),
                )
                .await
        }
    };
    let role = |context: &str| twilio.participant_role(context, "alex");
    let posts = || {
        twilio
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    };

    assert!(create(json!({"announcements": "reader"})).await.is_string());
    assert_eq!(role("announcements").as_deref(), Some(setup::READER_ROLE));
    assert_eq!(
        role("general"),
        None,
        "a member has the service's default role"
    );

    // The platform makes alex a moderator of announcements: one request, the role.
    twilio.clear_log();
    assert!(
        create(json!({"announcements": "moderator"}))
            .await
            .is_string()
    );
    assert_eq!(
        role("announcements").as_deref(),
        Some(setup::MODERATOR_ROLE)
    );
    let changed = posts();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].ends_with("/Participants/alex"), "{changed:?}");

    // The same roles again: nothing asked of Twilio in this process.
    twilio.clear_log();
    assert!(
        create(json!({"announcements": "moderator"}))
            .await
            .is_string()
    );
    assert_eq!(twilio.request_count(), 0);

    // Back to a plain member: one request, the default participant role.
    twilio.clear_log();
    assert!(create(json!({})).await.is_string());
    assert_eq!(posts().len(), 1);
    assert_eq!(
        role("announcements").as_deref(),
        Some(setup::PARTICIPANT_ROLE)
    );
    assert!(twilio.violations().is_empty(), "{:?}", twilio.violations());
}
