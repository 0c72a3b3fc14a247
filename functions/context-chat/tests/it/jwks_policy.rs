//! The JWKS fetch policy (`adr/002-jwks-fetch-and-cache.md`) against a real issuer on
//! loopback: rotation, a slow issuer, an issuer that is down, bursts of unknown kids.

use std::sync::Arc;
use std::time::Duration;

use context_chat::ErrorKind;
use context_chat::context_token::{JwksCache, JwksPolicy, Verifier, jwks::http_client};
use futures::future::join_all;
use test_support::{Behaviour, Issuer, TestKey, claims, jwks};

fn verifier(issuer: &Issuer, policy: JwksPolicy) -> Arc<Verifier> {
    Arc::new(Verifier::new(
        JwksCache::new(issuer.url().parse().unwrap(), http_client(), policy),
        None,
        None,
    ))
}

/// Distinct tokens, so that the verified-token cache does not answer.
fn tokens(key: &TestKey, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| key.token(&claims(&format!("user-{i}"), &["general"])))
        .collect()
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    issuer.set_delay(Duration::from_millis(300));
    let v = verifier(&issuer, JwksPolicy::default());
    let results = join_all(tokens(&key, 20).into_iter().map(|t| {
        let v = v.clone();
        async move { v.verify(&t).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn a_burst_of_unknown_kids_is_not_a_burst_of_fetches() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let policy = JwksPolicy {
        cooldown: Duration::from_millis(400),
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy);
    v.verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), 1);

    let strangers: Vec<String> = (0..50)
        .map(|i| TestKey::es256(&format!("stranger-{i}")).token(&claims("eve", &["general"])))
        .collect();
    let burst = |tokens: Vec<String>| {
        let v = v.clone();
        async move {
            join_all(tokens.into_iter().map(|t| {
                let v = v.clone();
                async move { v.verify(&t).await.unwrap_err().kind }
            }))
            .await
        }
    };
    // Within the cooldown of the first fetch: no fetch at all.
    let kinds = burst(strangers.clone()).await;
    assert!(kinds.iter().all(|k| *k == ErrorKind::AccessDenied));
    assert_eq!(issuer.fetches(), 1);

    // After the cooldown: fifty unknown kids at once cause exactly one fetch.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let kinds = burst(strangers).await;
    assert!(kinds.iter().all(|k| *k == ErrorKind::AccessDenied));
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn a_rotated_in_key_is_fetched_and_a_rotated_out_key_stops_working() {
    let old = TestKey::es256("2025-key");
    let new = TestKey::eddsa("2026-key");
    let issuer = Issuer::start(jwks(&[&old])).await;
    let policy = JwksPolicy {
        cooldown: Duration::ZERO,
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy);
    v.verify(&old.token(&claims("alex", &["general"])))
        .await
        .unwrap();

    issuer.set_jwks(jwks(&[&new]));
    let verified = v
        .verify(&new.token(&claims("sam", &["random"])))
        .await
        .unwrap();
    assert_eq!(verified.identity, "sam");
    assert_eq!(
        issuer.fetches(),
        2,
        "the unknown kid fetched the new key set"
    );

    let err = v
        .verify(&old.token(&claims("alex", &["general"])))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
}

#[tokio::test]
async fn a_slow_issuer_times_out_with_an_internal_error() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    issuer.set_delay(Duration::from_secs(3));
    let policy = JwksPolicy {
        timeout: Duration::from_millis(300),
        cooldown: Duration::from_millis(200),
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy);
    let started = std::time::Instant::now();
    let err = v
        .verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout cut the fetch short"
    );

    // Once the issuer answers in time again, verification recovers (after the cooldown).
    issuer.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(250)).await;
    v.verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_from_the_last_hour_keep_working_while_the_issuer_is_down() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let policy = JwksPolicy {
        max_age: Duration::from_millis(100),
        cooldown: Duration::from_millis(300),
        stale_for: Duration::from_millis(1200),
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy);
    v.verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap();

    issuer.set_behaviour(Behaviour::Status(503));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The keys are old, the issuer is down: the cached keys answer, after one attempt.
    for token in tokens(&key, 5) {
        v.verify(&token).await.expect("stale keys still verify");
    }
    assert_eq!(
        issuer.fetches(),
        2,
        "a down issuer is not asked again within the cooldown"
    );

    // Past the stale limit, nothing verifies until the issuer is back.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let err = v
        .verify(&key.token(&claims("late", &["general"])))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
    assert!(
        err.message.contains("could not be fetched"),
        "{}",
        err.message
    );

    issuer.set_behaviour(Behaviour::Serve);
    tokio::time::sleep(Duration::from_millis(350)).await;
    v.verify(&key.token(&claims("back", &["general"])))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_issuer_down_from_the_start_is_an_internal_error() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let url = issuer.url();
    drop(issuer);
    let v = Verifier::new(
        JwksCache::new(url.parse().unwrap(), http_client(), JwksPolicy::default()),
        None,
        None,
    );
    let err = v
        .verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
}

/// With the issuer down at a cold start and no keys cached, requests within
/// the cooldown of a failed fetch are answered at once instead of each starting a fetch.
#[tokio::test]
async fn a_failed_first_fetch_is_not_repeated_within_the_cooldown() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    issuer.set_behaviour(Behaviour::Status(503));
    let policy = JwksPolicy {
        cooldown: Duration::from_millis(500),
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy);
    for token in tokens(&key, 5) {
        let err = v.verify(&token).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalError);
        assert!(
            err.message.contains("could not be fetched"),
            "{}",
            err.message
        );
    }
    assert_eq!(
        issuer.fetches(),
        1,
        "one fetch, then answers from the cooldown"
    );
    issuer.set_behaviour(Behaviour::Serve);
    tokio::time::sleep(Duration::from_millis(600)).await;
    v.verify(&key.token(&claims("alex", &["general"])))
        .await
        .expect("after the cooldown the issuer is asked again");
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn oversized_non_json_and_empty_key_sets_are_refused() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let v = verifier(
        &issuer,
        JwksPolicy {
            cooldown: Duration::ZERO,
            max_age: Duration::ZERO,
            ..JwksPolicy::default()
        },
    );
    let mut big = jwks(&[&key]);
    big["padding"] = "x".repeat(300 * 1024).into();
    for behaviour in [
        Behaviour::Body(big.to_string()),
        Behaviour::Body("<html>not a jwks</html>".into()),
        Behaviour::Body(r#"{"keys":[]}"#.into()),
        Behaviour::Status(404),
    ] {
        issuer.set_behaviour(behaviour.clone());
        let err = v
            .verify(&key.token(&claims("alex", &["general"])))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InternalError, "{behaviour:?}");
    }
}

#[tokio::test]
async fn redirects_are_followed_only_on_the_same_host() {
    let key = TestKey::es256("ec-1");
    let target = Issuer::start(jwks(&[&key])).await;
    let front = Issuer::start(jwks(&[])).await;

    // Same host (127.0.0.1), another port: followed.
    front.set_behaviour(Behaviour::RedirectTo(target.url()));
    let v = verifier(&front, JwksPolicy::default());
    v.verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap();

    // Another host name for the same machine: refused.
    let elsewhere = target.url().replace("127.0.0.1", "localhost");
    front.set_behaviour(Behaviour::RedirectTo(elsewhere));
    let v = verifier(&front, JwksPolicy::default());
    let err = v
        .verify(&key.token(&claims("alex", &["general"])))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InternalError);
}
