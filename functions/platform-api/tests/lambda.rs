//! The platform-api function under cargo lambda's local runtime: its settings in SSM and its
//! table on moto, the platform's JWKS on loopback, Twilio's stand-in; events shaped as
//! AppSync sends them in its OpenID Connect mode (the token in `authorization`).

use std::path::Path;

use std::path::PathBuf;
use std::time::Duration;

use context_chat::notifications::QueueMessage;
use context_chat::revocations::{self, Access};
use context_chat::store::{self};
use serde_json::{Value, json};
use test_support::{
    API_SECRET, Emulator, Fault, Function, Issuer, Method, Moto, TestKey, TwilioStandIn,
    appsync_event, claims, delayed_count, jwks, now, put_parameter, put_settings, unique,
};

const BINARY: &str = env!("CARGO_BIN_EXE_platform-api");

/// Another handler crate's binary: the workspace's test build makes every one of them, next
/// to this one.
fn sibling(name: &str) -> PathBuf {
    let path = Path::new(BINARY).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run the workspace's tests (scripts/test, or cargo nextest run --workspace)",
        path.display()
    );
    path
}
const ISSUER: &str = "https://tenant.eu.auth0.com/";
const AUDIENCE: &str = "https://chat.example.org/platform";

/// `parent.field` as AppSync hands it over after checking `token` in OIDC mode.
fn event(parent: &str, field: &str, arguments: Value, token: Option<&str>) -> Value {
    let mut event = appsync_event(parent, field, arguments);
    if let Some(token) = token {
        event["request"]["headers"]["authorization"] = json!(token);
        event["identity"] = json!({
            "claims": {"iss": ISSUER, "sub": "toolbox@clients", "aud": AUDIENCE},
            "issuer": ISSUER,
            "sub": "toolbox@clients",
        });
    }
    event
}

/// A deployment of the platform API on moto: context tokens from `context_issuer`, access
/// tokens from `issuer`, its table and queues, Twilio's stand-in; the functions'
/// environment and the delay queue's URL.
struct Deployment {
    stack: String,
    twilio: TwilioStandIn,
    env: Vec<(&'static str, String)>,
    delay_queue: String,
}

impl Deployment {
    async fn start(moto: &Moto, prefix: &str, context_issuer: &Issuer, issuer: &Issuer) -> Self {
        let stack = unique(prefix);
        let ssm = moto.ssm().await;
        put_settings(&ssm, &stack, &context_issuer.url(), API_SECRET).await;
        for (name, value) in [
            ("platform/issuer", ISSUER.to_owned()),
            ("platform/audience", AUDIENCE.to_owned()),
            ("platform/jwks.json", issuer.url()),
        ] {
            put_parameter(&ssm, &format!("/{stack}/{name}"), &value, false).await;
        }
        let dynamodb = moto.dynamodb().await;
        aws_ports::create_table(&dynamodb, &stack).await.unwrap();
        let (_, delay_queue) = moto.notify_queues(&stack).await;
        let twilio = TwilioStandIn::start().await;
        let mut env = moto.function_env(&stack, Some(&stack));
        env.push(("TWILIO_API_BASE_URL", twilio.base_url()));
        env.push(("NOTIFY_DELAY_QUEUE_URL", delay_queue.clone()));
        Deployment {
            stack,
            twilio,
            env,
            delay_queue,
        }
    }
}

/// The platform's admin client: its access token, and the function it calls.
struct Admin<'a> {
    emulator: &'a Emulator,
    token: String,
}

impl Admin<'_> {
    /// `parent.field` with `arguments`.
    async fn call(&self, parent: &str, field: &str, arguments: Value) -> Value {
        let event = event(parent, field, arguments, Some(&self.token));
        self.emulator.answer("platform-api", &event).await
    }
}

fn access_token(key: &TestKey, scope: &str, audience: &str) -> String {
    let now = now();
    key.token(&json!({
        "iss": ISSUER, "aud": [audience, "https://tenant.eu.auth0.com/userinfo"],
        "sub": "toolbox@clients", "scope": scope, "iat": now, "exp": now + 600,
    }))
}

#[tokio::test]
async fn the_platform_fields_act_for_a_token_with_the_scope_and_for_no_other() {
    let moto = Moto::start();
    let platform_key = TestKey::rs256("idp-1");
    let issuer = Issuer::start(jwks(&[&platform_key])).await;
    let context_issuer = Issuer::start(jwks(&[&TestKey::es256("ctx")])).await;
    let Deployment {
        stack, twilio, env, ..
    } = Deployment::start(&moto, "platform", &context_issuer, &issuer).await;
    let emulator = Emulator::start();
    let function = Function::of(BINARY, &emulator, &env);
    let admin = access_token(&platform_key, "chat:read chat:admin", AUDIENCE);
    let as_admin = Admin {
        emulator: &emulator,
        token: admin.clone(),
    };

    let synced = as_admin
        .call(
            "Mutation",
            "syncIdentity",
            json!({"identity": "alex", "contexts": ["general", "random"]}),
        )
        .await;
    assert_eq!(
        (&synced["joined"], &synced["left"]),
        (&json!(["general", "random"]), &json!([]))
    );
    assert!(synced["sweepAt"].as_u64().is_some_and(|at| at > now()));
    assert_eq!(twilio.memberships("alex"), ["general", "random"]);
    let contexts = as_admin
        .call("Query", "identityContexts", json!({"identity": "alex"}))
        .await;
    assert_eq!(contexts, json!(["general", "random"]));
    // Titles and unread counts (issue 34), through the same function.
    let renamed = as_admin
        .call(
            "Mutation",
            "updateContext",
            json!({"context": "general", "title": "General — all staff"}),
        )
        .await;
    assert_eq!(
        renamed,
        json!({"context": "general", "title": "General — all staff"})
    );
    assert_eq!(
        twilio.friendly_name("general").as_deref(),
        Some("General — all staff")
    );
    twilio.add_message("general", "sam", "hello");
    twilio.set_last_read("general", "alex", 0);
    twilio.add_message("general", "sam", "anyone?");
    let counts = as_admin
        .call("Query", "unreadCounts", json!({"identity": "alex"}))
        .await;
    assert_eq!(
        counts,
        json!([
            {"context": "general", "unread": 1, "lastReadIndex": 0},
            {"context": "random", "unread": null, "lastReadIndex": null},
        ])
    );

    // Refused, and nothing changes: no token, a read-only token for a mutation, a token for
    // another audience (AppSync checks only the issuer's signature and expiry).
    let read_only = access_token(&platform_key, "chat:read", AUDIENCE);
    let elsewhere = access_token(&platform_key, "chat:admin", "https://other.example.org/");
    for token in [None, Some(read_only.as_str()), Some(elsewhere.as_str())] {
        let (error_type, _) = emulator
            .refusal(
                "platform-api",
                &event(
                    "Mutation",
                    "updateContext",
                    json!({"context": "general", "title": "Taken over"}),
                    token,
                ),
            )
            .await;
        assert_eq!(error_type, "AccessDenied", "{token:?}");
        // The reading fields: no token, or one for another audience, reads nothing.
        if token != Some(read_only.as_str()) {
            for (field, arguments) in [
                ("unreadCounts", json!({"identity": "alex"})),
                (
                    "contextAccess",
                    json!({"context": "general", "from": 0, "to": 1}),
                ),
            ] {
                let (error_type, _) = emulator
                    .refusal("platform-api", &event("Query", field, arguments, token))
                    .await;
                assert_eq!(error_type, "AccessDenied", "{field} {token:?}");
            }
        }
        let (error_type, message) = emulator
            .refusal(
                "platform-api",
                &event(
                    "Mutation",
                    "revokeIdentity",
                    json!({"identity": "alex"}),
                    token,
                ),
            )
            .await;
        assert_eq!(error_type, "AccessDenied", "{token:?}: {message}");
    }
    assert_eq!(twilio.memberships("alex"), ["general", "random"]);
    assert_eq!(
        twilio.friendly_name("general").as_deref(),
        Some("General — all staff")
    );

    let revoked = as_admin
        .call("Mutation", "revokeIdentity", json!({"identity": "alex"}))
        .await;
    assert_eq!(revoked["left"], json!(["general", "random"]));
    assert!(twilio.memberships("alex").is_empty());
    // The revocation is in the table, where every token function reads it.
    let table = aws_ports::DynamoStore::new(moto.dynamodb().await, stack);
    let recorded = store::read::<Access>(&table, &revocations::key("alex"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        json!(recorded.value.revoked_before),
        revoked["revokedBefore"]
    );

    let (error_type, _) = emulator
        .refusal(
            "platform-api",
            &event("Query", "verifyToken", json!({"token": "x"}), Some(&admin)),
        )
        .await;
    assert_eq!(error_type, "BadRequest");
    let output = function.output();
    for token in [&admin, &read_only, &elsewhere] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!output.contains(signature), "a token in the function's log");
    }
}

/// H1 through the functions: platform-api revokes while create-chat-token (another process,
/// which read "not revoked" a moment before) is asked again with an older token, and while
/// one of its joins is still on its way to Twilio; the sweep platform-api queued on the
/// delay queue, handed to the notify function as SQS would hand it over, takes the raced
/// join out again.
#[tokio::test]
async fn h1_the_functions_refuse_a_join_after_a_revocation_and_sweep_a_raced_one() {
    let moto = Moto::start();
    let platform_key = TestKey::rs256("idp-1");
    let context_key = TestKey::es256("ctx");
    let issuer = Issuer::start(jwks(&[&platform_key])).await;
    let context_issuer = Issuer::start(jwks(&[&context_key])).await;
    let Deployment {
        stack: _,
        twilio,
        env,
        delay_queue,
    } = Deployment::start(&moto, "sweep", &context_issuer, &issuer).await;
    let emulator = Emulator::start();
    let _platform = Function::of(BINARY, &emulator, &env);
    let _tokens = Function::start(
        &sibling("create-chat-token"),
        "create-chat-token",
        &emulator,
        &env,
    );
    let _notify = Function::start(&sibling("notify"), "notify", &emulator, &env);
    let admin = access_token(&platform_key, "chat:read chat:admin", AUDIENCE);
    let as_admin = Admin {
        emulator: &emulator,
        token: admin.clone(),
    };
    let old = |identity: &str, contexts: &[&str]| {
        let mut c = claims(identity, contexts);
        c["iat"] = json!(now() - 30);
        context_key.token(&c)
    };
    let create = |token: String| {
        let event =
            test_support::mutation("createChatToken", json!({"deviceId": "d", "token": token}));
        let emulator = &emulator;
        async move { emulator.invoke("create-chat-token", &event).await }
    };
    let revoke = |identity: &str| {
        event(
            "Mutation",
            "revokeIdentity",
            json!({"identity": identity}),
            Some(&admin),
        )
    };

    // create-chat-token serves alex, and reads that alex is not revoked.
    create(old("alex", &["general"])).await.value();
    assert_eq!(twilio.memberships("alex"), ["general"]);
    let revoked = emulator.answer("platform-api", &revoke("alex")).await;
    assert_eq!(revoked["left"], json!(["general"]));
    let sweep_at = revoked["sweepAt"].as_u64().expect("a sweep is scheduled");
    assert!(
        sweep_at >= now() + 60,
        "after the window and the provisioning budget"
    );
    assert_eq!(delayed_count(&moto.sqs().await, &delay_queue).await, 1);
    // Another old token, within create-chat-token's minute of trust: refused before any join.
    let (error_type, message) = create(old("alex", &["general", "random"])).await.error();
    assert_eq!(error_type, "AccessDenied", "{message}");
    assert!(twilio.memberships("alex").is_empty(), "nothing joined");

    // sky's join is still on its way to Twilio when the revocation lists sky's memberships.
    // Its checks take milliseconds; a second and a half leaves room on a loaded machine.
    twilio.fail(Fault::slow(Duration::from_millis(3500)).on(Method::POST, "/Participants"));
    let revoking = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        emulator.invoke("platform-api", &revoke("sky")).await
    };
    let (created, revoked) = tokio::join!(create(old("sky", &["general"])), revoking);
    created.value();
    assert_eq!(revoked.value()["left"], json!([]));
    assert_eq!(twilio.memberships("sky"), ["general"], "the race is real");

    // The delay queue holds both sweeps; SQS hands them to notify when due.
    assert_eq!(delayed_count(&moto.sqs().await, &delay_queue).await, 2);
    let sweeps = ["alex", "sky"].map(|identity| {
        json!({
            "messageId": identity,
            "receiptHandle": format!("handle-{identity}"),
            "body": QueueMessage::Sweep { identity: identity.into() }.to_json(),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341600000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:notify-delay",
            "awsRegion": "eu-west-1"
        })
    });
    let batch = emulator.answer("notify", &json!({"Records": sweeps})).await;
    assert_eq!(batch, json!({"batchItemFailures": []}));
    assert!(
        twilio.memberships("sky").is_empty(),
        "the sweep took sky out"
    );
    let contexts = as_admin
        .call("Query", "identityContexts", json!({"identity": "sky"}))
        .await;
    assert_eq!(contexts, json!([]));
    assert_eq!(twilio.participants("general"), Vec::<String>::new());

    // The access log (issue 34), written by three functions into the table: who could read
    // general, from which token, until which revocation or sweep.
    let access = as_admin
        .call(
            "Query",
            "contextAccess",
            json!({"context": "general", "from": 0, "to": now() + 10}),
        )
        .await;
    let spans = access.as_array().unwrap();
    let who: Vec<(&str, &str, &str)> = spans
        .iter()
        .map(|s| {
            (
                s["identity"].as_str().unwrap(),
                s["cause"]["kind"].as_str().unwrap(),
                s["endedBy"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [("alex", "token", "revoke"), ("sky", "token", "sweep")],
        "{access:#}"
    );
    assert_eq!(spans[0]["cause"]["keyId"], "ctx");
    assert!(
        spans[0]["cause"]["xid"]
            .as_str()
            .is_some_and(|x| !x.is_empty())
    );
    assert_eq!(spans[0]["endedBy"]["client"], "toolbox@clients");
    assert!(spans.iter().all(|s| s["from"].as_u64() <= s["to"].as_u64()));
}

/// Issue 35 on the function, its table on moto and Twilio's stand-in (checked against the
/// spec): an export of what is stored, an erasure that leaves no address in the table and
/// queues `identity.revoked` on the events queue, an archive of every message that closes
/// the room.
#[tokio::test]
async fn exports_erases_and_archives_on_the_table_and_twilio() {
    use context_chat::notifications::{EmailAddress, Subscription, keys};
    let moto = Moto::start();
    let platform_key = TestKey::rs256("idp-1");
    let issuer = Issuer::start(jwks(&[&platform_key])).await;
    let context_issuer = Issuer::start(jwks(&[&TestKey::es256("ctx")])).await;
    let Deployment {
        stack,
        twilio,
        mut env,
        ..
    } = Deployment::start(&moto, "platform-data", &context_issuer, &issuer).await;
    let ssm = moto.ssm().await;
    put_parameter(
        &ssm,
        &format!("/{stack}/notifications/linkSecret"),
        test_support::LINK_SECRET,
        true,
    )
    .await;
    put_parameter(
        &ssm,
        &format!("/{stack}/platform/eventsUrl"),
        "https://platform.example.org/events",
        false,
    )
    .await;
    let sqs = moto.sqs().await;
    let events = sqs
        .create_queue()
        .queue_name(format!("{stack}-events"))
        .send()
        .await;
    let events = events.unwrap().queue_url.unwrap();
    env.push(("EVENTS_QUEUE_URL", events.clone()));
    let emulator = Emulator::start();
    let _function = Function::of(BINARY, &emulator, &env);
    let admin = Admin {
        emulator: &emulator,
        token: access_token(&platform_key, "chat:read chat:admin", AUDIENCE),
    };
    admin
        .call(
            "Mutation",
            "syncIdentity",
            json!({"identity": "alex", "contexts": ["general", "depot"]}),
        )
        .await;
    let dynamodb = moto.dynamodb().await;
    let table = aws_ports::DynamoStore::new(dynamodb.clone(), stack.clone());
    let subscription = Subscription {
        context: "general".into(),
        identity: "alex".into(),
        email: EmailAddress::parse("alex@example.org").unwrap(),
        created_at: 1,
        per_identity: true,
    };
    store::write_over(
        &table,
        &keys::subscription("general", "alex"),
        &subscription,
    )
    .await
    .unwrap();

    let export = admin
        .call("Query", "exportIdentity", json!({"identity": "alex"}))
        .await;
    let export: Value = serde_json::from_str(export.as_str().expect("AWSJSON is text")).unwrap();
    assert_eq!(export["memberships"], json!(["depot", "general"]));
    let kinds = |export: &Value| {
        let mut kinds: Vec<String> = export["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    };
    assert_eq!(
        kinds(&export),
        ["accessLog", "revocation", "subscription"],
        "{export:#}"
    );

    // sam writes in depot, which the platform archives (alex is still in it).
    twilio.add_participant("depot", "sam");
    twilio.add_message("depot", "sam", "Pallets counted");
    twilio.add_message("depot", "alex", "Thanks");
    let archived = admin
        .call("Mutation", "archiveContext", json!({"context": "depot"}))
        .await;
    assert_eq!(archived["messages"], 2, "{archived}");
    let archive: Value = serde_json::from_str(archived["archive"].as_str().unwrap()).unwrap();
    assert_eq!(archive["messages"][0]["body"], "Pallets counted");
    assert!(
        twilio
            .participants(archived["archivedName"].as_str().unwrap())
            .is_empty()
    );
    assert!(
        twilio.conversation_sid("depot").is_none(),
        "the name is free"
    );
    assert_eq!(twilio.memberships("alex"), ["general"]);

    let erased = admin
        .call(
            "Mutation",
            "eraseIdentity",
            json!({"identity": "alex", "deleteMessages": true}),
        )
        .await;
    assert_eq!(erased["left"], json!(["general"]), "{erased}");
    assert_eq!(erased["alreadyErased"], false);
    assert!(twilio.memberships("alex").is_empty());
    let after = admin
        .call("Query", "exportIdentity", json!({"identity": "alex"}))
        .await;
    let after: Value = serde_json::from_str(after.as_str().unwrap()).unwrap();
    assert_eq!(kinds(&after), ["revocation"], "{after:#}");
    let scan = dynamodb.scan().table_name(&stack).send().await.unwrap();
    let items = format!("{:?}", scan.items());
    assert!(!items.contains("alex@example.org"), "{items}");
    assert!(items.contains("erased-"), "the access log stays, hashed");
    // The platform hears of it, through the events queue.
    let queued = test_support::drain_queue(&sqs, &events).await;
    let kinds: Vec<String> = queued
        .iter()
        .filter_map(|m| match QueueMessage::from_json(m.body().unwrap()).ok()? {
            QueueMessage::Event(event) => Some(event.kind),
            _ => None,
        })
        .collect();
    assert!(kinds.contains(&"identity.revoked".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"membership.left".to_owned()), "{kinds:?}");
    assert!(twilio.take_violations().is_empty());
}
