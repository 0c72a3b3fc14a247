//! The platform API on real parts: an independent RS256 issuer of platform access tokens and
//! the platform's context-token issuer, both on loopback; the Twilio stand-in (checked by
//! Prism); DynamoDB and SQS on moto, shared by two `App`s as two Lambda processes share the
//! table, and a notifier that runs what comes off the delay queue (the sweeps).

use std::sync::Arc;
use std::time::Duration;

use aws_ports::{DynamoStore, SqsQueue, create_table};
use context_chat::notifications::ChannelKind::Email;
use context_chat::notifications::service::EndsAccess;
use context_chat::notifications::{Ports, Queue, QueueMessage};
use context_chat::settings::SettingsSource;
use context_chat::twilio::provisioning::ProvisioningOptions;
use context_chat::{App, AppOptions, ErrorKind};
use serde_json::{Value, json};
use test_support::{
    Fault, Issuer, LINK_SECRET, Method, Moto, SendGridStandIn, TestKey, TwilioStandIn, claims,
    jwks, now, unique,
};

const ISS: &str = "https://idp.example/";
const AUD: &str = "https://chat.example/platform";
/// How long another process may still trust what it read of a revocation, in these tests.
const WINDOW: Duration = Duration::from_millis(400);

struct World {
    /// The notifier's loop over the delay queue, stopped with the world.
    notifier: tokio::task::JoinHandle<()>,
    _moto: Moto,
    twilio: TwilioStandIn,
    _sendgrid: SendGridStandIn,
    _issuers: (Issuer, Issuer),
    context_key: TestKey,
    platform_key: TestKey,
    /// Two processes on one table.
    a: Arc<App>,
    b: Arc<App>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.notifier.abort();
    }
}

impl World {
    async fn new() -> Self {
        Self::with_window(WINDOW).await
    }

    /// Other processes trust what they read of an identity's record for `window`; the sweep
    /// comes `window` + the provisioning budget (5 s here) + the margin after a statement.
    async fn with_window(window: Duration) -> Self {
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
        let mut env = crate::env_map(twilio.env().into_iter().chain(sendgrid.env()));
        for (k, v) in [
            ("CHAT_JWKS_URL", contexts.url()),
            ("CHAT_LINK_SECRET", LINK_SECRET.into()),
            ("PLATFORM_ISSUER", ISS.into()),
            ("PLATFORM_AUDIENCE", AUD.into()),
            ("PLATFORM_JWKS_URL", platform.url()),
        ] {
            env.insert(k.into(), v);
        }
        let sqs = moto.sqs().await;
        let (_, delay_queue) = moto.notify_queues(&table).await;
        let queue: Arc<dyn Queue> =
            Arc::new(SqsQueue::new(sqs.clone(), None, Some(delay_queue.clone())));
        let app = || {
            Arc::new(
                App::builder(
                    SettingsSource::env_vars(env.clone()),
                    AppOptions {
                        revocation_window: window,
                        provisioning: ProvisioningOptions {
                            budget: Duration::from_secs(5),
                            ..ProvisioningOptions::default()
                        },
                        ..AppOptions::default()
                    },
                )
                .ports(Ports {
                    store: Arc::new(DynamoStore::new(dynamodb.clone(), table.clone())),
                    queue: Some(queue.clone()),
                    public_url: None,
                })
                .lend(EndsAccess::HOOK)
                .build(),
            )
        };
        let (a, b) = (app(), app());
        Self {
            notifier: tokio::spawn(notifier(sqs, delay_queue, b.clone())),
            a,
            b,
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

/// The notify function: what comes off the delay queue, handled by an `App` (here process b,
/// so that a sweep never runs where the statement was made).
async fn notifier(sqs: aws_sdk_sqs::Client, url: String, app: Arc<App>) {
    loop {
        let Ok(received) = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for m in received.messages.unwrap_or_default() {
            let message = QueueMessage::from_json(m.body().unwrap_or_default()).unwrap();
            if app.handle_queued(&message).await.is_ok() {
                let handle = m.receipt_handle().unwrap_or_default();
                let _ = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// Waits until `done` holds, at most until `deadline` (unix seconds) and a few seconds more.
async fn until(deadline: u64, mut done: impl FnMut() -> bool) -> bool {
    while now() <= deadline + 5 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

#[tokio::test]
async fn h1_a_revocation_is_not_outrun_by_another_process_and_is_swept_again() {
    // Process b trusts what it read for longer than this test takes to revoke.
    let w = World::with_window(Duration::from_secs(3)).await;
    let admin = w.bearer("chat:admin");
    let read = w.bearer("chat:read");
    let bob = w.context_token("bob", &["general"], Some(0));
    w.a.tokens().create_chat_token("d", &bob).await.unwrap();

    // 1. After the revocation, within b's window (b read "not revoked" just before): refused
    //    before any join, although b's memory says otherwise.
    let old = w.context_token("alex", &["general"], Some(30));
    w.b.tokens().verify_token(&old).await.unwrap();
    let revoked =
        w.a.platform()
            .revoke_identity(Some(&admin), "alex")
            .await
            .unwrap();
    let alex_sweep_at = revoked.sweep_at.expect("a sweep is scheduled");
    assert!(
        alex_sweep_at >= revoked.revoked_before + 6,
        "after the window and the budget"
    );
    let err = w.b.tokens().create_chat_token("d", &old).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied, "{}", err.message);
    assert!(w.twilio.memberships("alex").is_empty(), "nothing joined");
    // A token issued after the revocation works, and alex's sweep will keep what it joined.
    let fresh = w.context_token("alex", &["general"], Some(0));
    w.b.tokens().create_chat_token("d", &fresh).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["general"]);

    // 2. A request that passed every check before the revocation, its join still on its way
    //    to Twilio while the revocation's own sweep lists the memberships: it joins after
    //    the first sweep, and the second one takes it out again.
    let old = w.context_token("sky", &["general"], Some(30));
    // Its checks take milliseconds; a second leaves room on a loaded machine.
    w.twilio
        .fail(Fault::slow(Duration::from_millis(2500)).on(Method::POST, "/Participants"));
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        w.a.platform().revoke_identity(Some(&admin), "sky").await
    };
    let (created, revoked) = tokio::join!(w.b.tokens().create_chat_token("d", &old), revoke);
    created.expect("it passed the checks before the revocation");
    let revoked = revoked.unwrap();
    assert!(revoked.left.is_empty(), "the join was still in flight");
    assert_eq!(w.twilio.memberships("sky"), ["general"], "the race is real");
    let sweep_at = revoked.sweep_at.expect("a sweep is scheduled");
    assert!(
        until(sweep_at, || w.twilio.memberships("sky").is_empty()).await,
        "the second sweep took sky out"
    );
    assert!(now() + 1 >= sweep_at, "by the sweep, not before it");
    let contexts =
        w.a.platform()
            .identity_contexts(Some(&read), "sky")
            .await
            .unwrap();
    assert!(contexts.is_empty(), "{contexts:?}");
    // Past alex's sweep (due before sky's): it kept the newer token's membership.
    while now() <= alex_sweep_at + 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut members = w.twilio.participants("general");
    members.sort();
    assert_eq!(members, ["alex", "bob"]);
}

#[tokio::test]
async fn a_sync_is_not_undone_by_a_token_issued_before_it() {
    let w = World::with_window(Duration::from_secs(3)).await;
    let admin = w.bearer("chat:admin");
    let old = w.context_token("alex", &["a", "b"], Some(30));
    // Process b reads alex's record (none yet) and trusts it for its window.
    w.b.tokens().verify_token(&old).await.unwrap();
    w.a.tokens().create_chat_token("d", &old).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["a", "b"]);

    let synced =
        w.a.platform()
            .sync_identity(Some(&admin), "alex", vec!["a".into(), "c".into()])
            .await
            .unwrap();
    assert_eq!(
        (synced.joined, synced.left),
        (vec!["c".to_owned()], vec!["b".to_owned()])
    );
    assert!(synced.sweep_at.is_some());

    // The old token, in the other process within its window: it follows the sync (ADR 012),
    // and never brings back "b".
    w.b.tokens().create_chat_token("d", &old).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["a", "c"]);
    // Nor in the process that synced, nor after the window.
    w.a.tokens().create_chat_token("d", &old).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.b.tokens().create_chat_token("d2", &old).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["a", "c"]);

    // A token issued after the sync works as its contexts say, and the sweep keeps it.
    let fresh = w.context_token("alex", &["a", "b"], Some(0));
    w.b.tokens().create_chat_token("d", &fresh).await.unwrap();
    assert_eq!(w.twilio.memberships("alex"), ["a", "b"]);
    let sweep_at = synced.sweep_at.unwrap();
    tokio::time::sleep(Duration::from_secs(sweep_at.saturating_sub(now()) + 3)).await;
    assert_eq!(
        w.twilio.memberships("alex"),
        ["a", "b"],
        "the sweep kept the newer token's word"
    );
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
        .subscribe(Email, "general", "alex@example.org", &old)
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
                .subscribe(Email, "general", "alex@example.org", token)
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
