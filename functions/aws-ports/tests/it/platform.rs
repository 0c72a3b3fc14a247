//! The platform API on real parts: an independent RS256 issuer of platform access tokens and
//! the platform's context-token issuer, both on loopback; the Twilio stand-in (checked by
//! Prism); DynamoDB on moto, shared by two `App`s as two Lambda processes share the table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_ports::{DynamoStore, create_table};
use context_chat::notifications::NotificationPorts;
use context_chat::settings::SettingsSource;
use context_chat::{App, AppOptions, ErrorKind};
use serde_json::{Value, json};
use test_support::{
    Issuer, LINK_SECRET, Moto, SendGridStandIn, TestKey, TwilioStandIn, claims, jwks, now, unique,
};

const ISS: &str = "https://idp.example/";
const AUD: &str = "https://chat.example/platform";
/// How long another process may still trust what it read of a revocation, in these tests.
const WINDOW: Duration = Duration::from_millis(400);

struct World {
    _moto: Moto,
    twilio: TwilioStandIn,
    _sendgrid: SendGridStandIn,
    _issuers: (Issuer, Issuer),
    context_key: TestKey,
    platform_key: TestKey,
    /// Two processes on one table.
    a: App,
    b: App,
}

impl World {
    async fn new() -> Self {
        let moto = Moto::start();
        let context_key = TestKey::es256("ctx-1");
        let platform_key = TestKey::rs256("idp-1");
        let contexts = Issuer::start(jwks(&[&context_key])).await;
        let platform = Issuer::start(jwks(&[&platform_key])).await;
        let twilio = TwilioStandIn::start().await;
        let sendgrid = SendGridStandIn::start().await;
        let table = unique("platform");
        let dynamodb = moto.dynamodb().await;
        create_table(&dynamodb, &table).await.unwrap();
        let mut env: HashMap<String, String> = twilio
            .env()
            .into_iter()
            .chain(sendgrid.env())
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in [
            ("CHAT_JWKS_URL", contexts.url()),
            ("CHAT_LINK_SECRET", LINK_SECRET.into()),
            ("PLATFORM_ISSUER", ISS.into()),
            ("PLATFORM_AUDIENCE", AUD.into()),
            ("PLATFORM_JWKS_URL", platform.url()),
        ] {
            env.insert(k.into(), v);
        }
        let app = || {
            App::builder(
                SettingsSource::env_vars(env.clone()),
                AppOptions {
                    revocation_window: WINDOW,
                    ..AppOptions::default()
                },
            )
            .notifications(NotificationPorts {
                store: Arc::new(DynamoStore::new(dynamodb.clone(), table.clone())),
                queue: None,
                public_url: None,
            })
            .build()
        };
        Self {
            a: app(),
            b: app(),
            _moto: moto,
            twilio,
            _sendgrid: sendgrid,
            _issuers: (contexts, platform),
            context_key,
            platform_key,
        }
    }

    /// A client-credentials access token with `scope`, as `Authorization` carries it.
    fn bearer(&self, scope: &str) -> String {
        let now = now();
        let token = self.platform_key.token(&json!({
            "iss": ISS, "aud": AUD, "sub": "toolbox@clients", "scope": scope,
            "iat": now, "exp": now + 600,
        }));
        format!("Bearer {token}")
    }

    /// A context token issued `age` seconds ago (`None`: without `iat`).
    fn context_token(&self, identity: &str, contexts: &[&str], age: Option<u64>) -> String {
        let mut c: Value = claims(identity, contexts);
        match age {
            Some(age) => c["iat"] = json!(now() - age),
            None => {
                c.as_object_mut().unwrap().remove("iat");
            }
        }
        self.context_key.token(&c)
    }
}

#[tokio::test]
async fn a_revoked_identitys_old_tokens_are_refused_everywhere_and_a_new_one_provisions_again() {
    let w = World::new().await;
    let old = w.context_token("alex", &["general"], Some(30));
    let no_iat = w.context_token("alex", &["general"], None);
    // Process b serves alex: provisioned, remembered, subscribed.
    w.b.tokens().create_chat_token("d", &old).await.unwrap();
    let b_notifications = w.b.notifications().unwrap();
    b_notifications
        .subscribe("general", "alex@example.org", &old)
        .await
        .unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["general"]);

    // The platform revokes alex through process a.
    let revoked =
        w.a.platform()
            .revoke_identity(Some(&w.bearer("chat:admin")), "alex")
            .await
            .unwrap();
    assert_eq!(revoked.left, ["general"]);
    assert_eq!(revoked.subscriptions_removed, 1);
    assert!(revoked.revoked_before <= now());
    assert!(w.twilio.memberships("alex").is_empty());
    // At once in the process that revoked.
    let err = w.a.tokens().verify_token(&old).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied, "{}", err.message);

    // In the other process within its window: every operation refuses the old tokens.
    tokio::time::sleep(WINDOW + Duration::from_millis(100)).await;
    for token in [&old, &no_iat] {
        let refused = [
            w.b.tokens().verify_token(token).await.map(|_| ()),
            w.b.tokens().create_chat_token("d", token).await.map(|_| ()),
            b_notifications
                .subscribe("general", "alex@example.org", token)
                .await
                .map(|_| ()),
        ];
        for outcome in refused {
            let err = outcome.unwrap_err();
            assert_eq!(err.kind, ErrorKind::AccessDenied, "{}", err.message);
            assert!(err.message.contains("revoked"), "{}", err.message);
        }
    }
    assert!(w.twilio.memberships("alex").is_empty(), "nothing re-joined");

    // A token issued from now on works, and process b provisions again although it
    // remembered alex in "general" from before.
    let fresh = w.context_token("alex", &["general"], Some(0));
    w.b.tokens().create_chat_token("d", &fresh).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["general"]);
    w.a.tokens().verify_token(&fresh).await.unwrap();
}

#[tokio::test]
async fn sync_look_up_and_the_scopes_each_operation_needs() {
    let w = World::new().await;
    let admin = w.bearer("chat:admin");
    let read = w.bearer("chat:read");
    let platform = w.a.platform();

    let synced = platform
        .sync_identity(Some(&admin), "sam", vec!["general".into(), "random".into()])
        .await
        .unwrap();
    assert_eq!(synced.joined, ["general", "random"]);
    assert!(synced.left.is_empty());
    assert_eq!(
        platform
            .identity_contexts(Some(&read), "sam")
            .await
            .unwrap(),
        ["general", "random"]
    );
    assert_eq!(
        platform
            .context_members(Some(&read), "general")
            .await
            .unwrap(),
        ["sam"]
    );
    let synced = platform
        .sync_identity(Some(&admin), "sam", vec!["random".into()])
        .await
        .unwrap();
    assert_eq!(
        (synced.joined.len(), synced.left),
        (0, vec!["general".to_owned()])
    );
    assert_eq!(w.twilio.memberships("sam"), ["random"]);
    let err = platform
        .context_members(Some(&read), "nowhere")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::EntityNotFound);
    assert!(
        platform
            .identity_contexts(Some(&read), "nobody")
            .await
            .unwrap()
            .is_empty()
    );

    // Scopes: read is not admin; no token, or a context token, is nothing.
    let sam = w.context_token("sam", &["random"], Some(0));
    for authorization in [Some(read.as_str()), None, Some(sam.as_str())] {
        let err = platform
            .sync_identity(authorization, "sam", vec![])
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied, "{}", err.message);
        let err = platform
            .revoke_identity(authorization, "sam")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied);
    }
    assert_eq!(w.twilio.memberships("sam"), ["random"], "nothing changed");
    let err = platform
        .identity_contexts(Some(&w.bearer("openid")), "sam")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    // Names follow the tokens' rules.
    let err = platform
        .sync_identity(Some(&admin), "..", vec!["general".into()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
}

#[tokio::test]
async fn sync_raced_with_create_chat_token_converges() {
    let w = World::new().await;
    let admin = w.bearer("chat:admin");
    let token = w.context_token("kim", &["general", "random"], Some(0));
    for _ in 0..3 {
        let (synced, created) = tokio::join!(
            w.a.platform().sync_identity(
                Some(&admin),
                "kim",
                vec!["general".into(), "random".into()]
            ),
            w.b.tokens().create_chat_token("d", &token),
        );
        synced.unwrap();
        created.unwrap();
    }
    assert_eq!(w.twilio.memberships("kim"), ["general", "random"]);
    assert_eq!(w.twilio.participants("general"), ["kim"], "joined once");
    assert_eq!(w.twilio.participants("random"), ["kim"]);
}
