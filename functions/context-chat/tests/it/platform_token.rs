//! Platform access tokens against an independent RS256 issuer serving its JWKS on loopback:
//! what passes, what is refused, and that neither kind of token passes as the other.

use aws_lc_rs::hmac;
use context_chat::context_token::{JwksCache, JwksPolicy, Verifier, jwks::http_client};
use context_chat::platform::{PlatformVerifier, Scope};
use context_chat::settings::SettingsSource;
use context_chat::{App, AppOptions, ErrorKind};
use serde_json::{Value, json};
use test_support::keys::b64;
use test_support::{Issuer, TestKey, claims, jwks, now};

const ISS: &str = "https://idp.example/";
const AUD: &str = "https://chat.example/platform";

fn platform_claims(scope: &str) -> Value {
    let now = now();
    json!({"iss": ISS, "sub": "toolbox-backend@clients", "aud": AUD, "scope": scope,
           "iat": now, "exp": now + 3600, "gty": "client-credentials"})
}

fn platform(issuer: &Issuer) -> PlatformVerifier {
    PlatformVerifier::new(
        JwksCache::new(
            issuer.url().parse().unwrap(),
            http_client(),
            JwksPolicy::default(),
        ),
        ISS.into(),
        Some(AUD.into()),
    )
}

#[tokio::test]
async fn a_client_credentials_token_with_the_scope_passes_as_bearer_or_bare() {
    let (key, issuer) = Issuer::with(TestKey::rs256("idp-1")).await;
    let v = platform(&issuer);
    let token = key.token(&platform_claims("openid chat:read chat:admin"));
    for authorization in [format!("Bearer {token}"), token.clone()] {
        let caller = v.verify(&authorization, Scope::Admin).await.unwrap();
        assert_eq!(caller.client, "toolbox-backend@clients");
        v.verify(&authorization, Scope::Read).await.unwrap();
    }
    // Auth0's RBAC puts them in permissions; aud may be an array.
    let mut c = platform_claims("");
    c["permissions"] = json!(["chat:read"]);
    c["aud"] = json!([AUD, "https://idp.example/userinfo"]);
    v.verify(&key.token(&c), Scope::Read).await.unwrap();
}

#[tokio::test]
async fn bad_platform_tokens_are_access_denied_and_kinds_never_cross() {
    let (key, issuer) = Issuer::with(TestKey::rs256("idp-1")).await;
    let v = platform(&issuer);
    let good = platform_claims("chat:read chat:admin");
    // The good claims with one claim set to a value, or (`Value::Null`) removed.
    let with = |claim: &str, value: Value| {
        let mut c = good.clone();
        match value {
            Value::Null => drop(c.as_object_mut().unwrap().remove(claim)),
            value => c[claim] = value,
        }
        key.token(&c)
    };
    let header = json!({"alg": "HS256", "kid": "idp-1", "typ": "JWT"});
    let message = format!("{}.{}", b64(header.to_string()), b64(good.to_string()));
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.public_pem().as_bytes()),
        message.as_bytes(),
    );
    let hs256 = format!("{message}.{}", b64(mac.as_ref()));
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": "idp-1"}).to_string()),
        b64(good.to_string())
    );
    // A context token from the same issuer and key, audience and all.
    let mut context = claims("alex", &["general"]);
    context["iss"] = json!(ISS);
    context["aud"] = json!(AUD);
    context["scope"] = json!("chat:admin");
    let cases = [
        ("HS256 keyed with the public key", hs256, Scope::Read),
        ("alg none", none, Scope::Read),
        (
            "a read token for a mutation",
            with("scope", json!("chat:read")),
            Scope::Admin,
        ),
        ("no scope", with("scope", Value::Null), Scope::Read),
        (
            "a wrong audience",
            with("aud", json!("https://other.example/")),
            Scope::Read,
        ),
        ("no audience", with("aud", Value::Null), Scope::Read),
        (
            "iss without its trailing slash",
            with("iss", json!("https://idp.example")),
            Scope::Read,
        ),
        ("expired", with("exp", json!(now() - 3600)), Scope::Read),
        ("a context token", key.token(&context), Scope::Admin),
        (
            "another key under the same kid",
            TestKey::rs256("idp-1").token(&good),
            Scope::Read,
        ),
    ];
    for (what, token, scope) in cases {
        let err = v
            .verify(&format!("Bearer {token}"), scope)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied, "{what}: {}", err.message);
        assert!(!err.message.contains(&token), "{what}");
    }

    // A platform token never passes as a context token, whatever the context rules.
    let contexts = Verifier::new(
        JwksCache::new(
            issuer.url().parse().unwrap(),
            http_client(),
            JwksPolicy::default(),
        ),
        Some(ISS.into()),
        Some(AUD.into()),
    );
    assert!(contexts.verify(&key.token(&good)).await.is_err());
    assert!(
        contexts.verify(&key.token(&context)).await.is_ok(),
        "the context token itself passes"
    );
}

#[tokio::test]
async fn without_an_issuer_the_platform_api_is_not_configured() {
    let issuer = Issuer::start(jwks(&[&TestKey::es256("k")])).await;
    let mut env = test_support::twilio::credentials_env();
    env.push(("CHAT_JWKS_URL", issuer.url()));
    let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let app = App::new(SettingsSource::env_vars(env), AppOptions::default());
    let configured = app.settings().current().await.unwrap();
    let err = configured.platform().err().unwrap();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert!(err.message.contains("not configured"), "{}", err.message);
}
