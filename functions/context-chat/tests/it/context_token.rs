//! Context token verification against an issuer serving its JWKS over HTTP on loopback.

use std::time::Duration;

use aws_lc_rs::hmac;
use context_chat::context_token::{JwksCache, JwksPolicy, Verifier, jwks::http_client};
use context_chat::{ChatError, ErrorKind};
use serde_json::{Value, json};
use test_support::keys::b64;
use test_support::{Issuer, TestKey, claims, jwks, legacy_jwks, now};

fn verifier(issuer: &Issuer, policy: JwksPolicy, iss: Option<&str>, aud: Option<&str>) -> Verifier {
    Verifier::new(
        JwksCache::new(issuer.url().parse().unwrap(), http_client(), policy),
        iss.map(str::to_owned),
        aud.map(str::to_owned),
    )
}

async fn kind_of(v: &Verifier, token: &str) -> ErrorKind {
    match v.verify(token).await {
        Ok(ok) => panic!("expected an error, got {ok:?}"),
        Err(ChatError { kind, message, .. }) => {
            assert!(!message.is_empty());
            assert!(
                !message.contains(token),
                "an error message holds the whole token"
            );
            kind
        }
    }
}

#[tokio::test]
async fn every_accepted_key_type_verifies_in_both_jwks_shapes() {
    let keys = [
        TestKey::es256("ec-1"),
        TestKey::rs256("rsa-1"),
        TestKey::eddsa("ed-1"),
    ];
    for shape in ["rfc7517", "legacy"] {
        let refs: Vec<&TestKey> = keys.iter().collect();
        let doc = if shape == "legacy" {
            legacy_jwks(&refs)
        } else {
            jwks(&refs)
        };
        let issuer = Issuer::start(doc).await;
        let v = verifier(&issuer, JwksPolicy::default(), None, None);
        for key in &keys {
            let token = key.token(&claims("alex", &["general", "SHIPMENT-42"]));
            let verified = v
                .verify(&token)
                .await
                .unwrap_or_else(|e| panic!("{} in {shape} shape: {e}", key.alg()));
            assert_eq!(verified.identity, "alex");
            assert_eq!(verified.contexts, ["general", "SHIPMENT-42"]);
        }
        assert_eq!(issuer.fetches(), 1, "one fetch serves every key");
    }
}

#[tokio::test]
async fn bad_tokens_get_the_right_error_type() {
    let key = TestKey::es256("ec-1");
    let rsa = TestKey::rs256("rsa-1");
    let issuer = Issuer::start(jwks(&[&key, &rsa])).await;
    let v = verifier(&issuer, JwksPolicy::default(), None, None);
    let good = claims("alex", &["general"]);
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let unsigned = |header: &Value, claims: &Value| {
        format!("{}.{}", b64(header.to_string()), b64(claims.to_string()))
    };
    let with_claims = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        key.token(&c)
    };

    // alg none, with and without a signature.
    let none = format!("{}.", unsigned(&header("none", "ec-1"), &good));
    let none_signed = format!("{}.{}", unsigned(&header("none", "ec-1"), &good), b64("x"));
    // HS256 keyed with the public key's bytes, the classic algorithm confusion.
    let message = unsigned(&header("HS256", "ec-1"), &good);
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.public_pem().as_bytes()),
        message.as_bytes(),
    );
    let hs256 = format!("{message}.{}", b64(mac.as_ref()));
    // A kid whose key has another algorithm: RS256 named, the kid is an ES256 key.
    let wrong_alg_for_kid = rsa.token_with_header(&header("RS256", "ec-1"), &good);
    let unknown_kid = TestKey::es256("nobody").token(&good);
    // Tampered payload: claims swapped after signing.
    let signed = key.token(&good);
    let parts: Vec<&str> = signed.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims("mallory", &["general"]).to_string()),
        parts[2]
    );
    let short_sig = format!("{}.{}.{}", parts[0], parts[1], b64([1u8; 63]));
    let der_sig = {
        let message = format!("{}.{}", parts[0], parts[1]);
        format!("{message}.{}", b64(key.sign_der(message.as_bytes())))
    };
    let not_base64_sig = format!("{}.{}.%%%", parts[0], parts[1]);
    let no_kid = key.token_with_header(&json!({"alg": "ES256"}), &good);
    let crit = key.token_with_header(
        &json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"]}),
        &good,
    );
    let huge = with_claims(&|c| c["pad"] = json!("x".repeat(9000)));

    let cases: Vec<(&str, String, ErrorKind)> = vec![
        ("alg none", none, ErrorKind::AccessDenied),
        (
            "alg none with a signature",
            none_signed,
            ErrorKind::AccessDenied,
        ),
        ("HS256 with the public key", hs256, ErrorKind::AccessDenied),
        (
            "kid of another algorithm",
            wrong_alg_for_kid,
            ErrorKind::AccessDenied,
        ),
        ("unknown kid", unknown_kid, ErrorKind::AccessDenied),
        ("tampered payload", tampered, ErrorKind::AccessDenied),
        (
            "signature of the wrong length",
            short_sig,
            ErrorKind::AccessDenied,
        ),
        ("DER-encoded signature", der_sig, ErrorKind::AccessDenied),
        (
            "signature not base64url",
            not_base64_sig,
            ErrorKind::AccessDenied,
        ),
        (
            "expired",
            with_claims(&|c| c["exp"] = json!(now() - 120)),
            ErrorKind::AccessDenied,
        ),
        (
            "not yet valid",
            with_claims(&|c| c["nbf"] = json!(now() + 300)),
            ErrorKind::AccessDenied,
        ),
        (
            "issued in the future",
            with_claims(&|c| c["iat"] = json!(now() + 300)),
            ErrorKind::AccessDenied,
        ),
        (
            "no exp",
            with_claims(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            ErrorKind::BadRequest,
        ),
        (
            "exp not a number",
            with_claims(&|c| c["exp"] = json!("tomorrow")),
            ErrorKind::BadRequest,
        ),
        (
            "no sub",
            with_claims(&|c| drop(c.as_object_mut().unwrap().remove("sub"))),
            ErrorKind::BadRequest,
        ),
        (
            "sub not a string",
            with_claims(&|c| c["sub"] = json!(42)),
            ErrorKind::BadRequest,
        ),
        (
            "empty sub",
            with_claims(&|c| c["sub"] = json!("")),
            ErrorKind::BadRequest,
        ),
        (
            "contexts missing",
            with_claims(&|c| drop(c.as_object_mut().unwrap().remove("contexts"))),
            ErrorKind::BadRequest,
        ),
        (
            "contexts not an array",
            with_claims(&|c| c["contexts"] = json!("general")),
            ErrorKind::BadRequest,
        ),
        (
            "contexts with non-strings",
            with_claims(&|c| c["contexts"] = json!(["general", 7, null])),
            ErrorKind::BadRequest,
        ),
        (
            "unusable context name",
            with_claims(&|c| c["contexts"] = json!(["general", "no spaces please"])),
            ErrorKind::BadRequest,
        ),
        (
            "context like a SID",
            with_claims(&|c| c["contexts"] = json!(["CH0123456789abcdef0123456789abcdef"])),
            ErrorKind::BadRequest,
        ),
        ("no kid", no_kid, ErrorKind::BadRequest),
        ("crit header", crit, ErrorKind::BadRequest),
        ("over 8 KiB", huge, ErrorKind::BadRequest),
        ("not a JWT", "hello".into(), ErrorKind::BadRequest),
        ("two parts", "a.b".into(), ErrorKind::BadRequest),
        ("four parts", "a.b.c.d".into(), ErrorKind::BadRequest),
        (
            "garbage header",
            "!!!.e30.e30".into(),
            ErrorKind::BadRequest,
        ),
        (
            "header not an object",
            format!("{}.e30.e30", b64("[1,2]")),
            ErrorKind::BadRequest,
        ),
    ];
    for (name, token, expected) in cases {
        assert_eq!(kind_of(&v, &token).await, expected, "{name}");
    }
    // The good token still verifies after all that.
    assert!(v.verify(&key.token(&good)).await.is_ok());
}

#[tokio::test]
async fn leeway_is_sixty_seconds() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let v = verifier(&issuer, JwksPolicy::default(), None, None);
    let mut c = claims("alex", &["general"]);
    c["exp"] = json!(now() - 30);
    c["nbf"] = json!(now() + 30);
    c["iat"] = json!(now() + 30);
    assert!(v.verify(&key.token(&c)).await.is_ok(), "within the leeway");
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let v = verifier(
        &issuer,
        JwksPolicy::default(),
        Some("https://toolbox.example"),
        Some("context-chat"),
    );
    let with = |iss: Option<&str>, aud: Option<Value>| {
        let mut c = claims("alex", &["general"]);
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        key.token(&c)
    };
    let ok = with(Some("https://toolbox.example"), Some(json!("context-chat")));
    assert!(v.verify(&ok).await.is_ok());
    let ok_list = with(
        Some("https://toolbox.example"),
        Some(json!(["other", "context-chat"])),
    );
    assert!(v.verify(&ok_list).await.is_ok());
    for bad in [
        with(Some("https://evil.example"), Some(json!("context-chat"))),
        with(None, Some(json!("context-chat"))),
        with(
            Some("https://toolbox.example"),
            Some(json!("another-service")),
        ),
        with(Some("https://toolbox.example"), None),
    ] {
        assert_eq!(kind_of(&v, &bad).await, ErrorKind::AccessDenied);
    }
    // Unconfigured, iss and aud are not required.
    let plain = verifier(&issuer, JwksPolicy::default(), None, None);
    assert!(plain.verify(&with(None, None)).await.is_ok());
}

#[tokio::test]
async fn short_rsa_keys_and_hmac_keys_in_the_jwks_are_never_used() {
    // A 1024-bit modulus under the kid of a real RSA key: the JWKS entry must be refused.
    let rsa = TestKey::rs256("rsa-1024");
    let good = TestKey::es256("ec-1");
    let mut doc = jwks(&[&good]);
    let mut modulus = [0x5au8; 128];
    modulus[0] = 0xc1;
    doc["keys"].as_array_mut().unwrap().push(
        json!({"kty": "RSA", "kid": "rsa-1024", "alg": "RS256", "n": b64(modulus), "e": "AQAB"}),
    );
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64("shared")}));
    let issuer = Issuer::start(doc).await;
    let v = verifier(&issuer, JwksPolicy::default(), None, None);
    let c = claims("alex", &["general"]);
    assert_eq!(kind_of(&v, &rsa.token(&c)).await, ErrorKind::AccessDenied);
    let message = format!(
        "{}.{}",
        b64(json!({"alg":"HS256","kid":"hmac"}).to_string()),
        b64(c.to_string())
    );
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"shared"),
        message.as_bytes(),
    );
    assert_eq!(
        kind_of(&v, &format!("{message}.{}", b64(mac.as_ref()))).await,
        ErrorKind::AccessDenied
    );
    assert!(v.verify(&good.token(&c)).await.is_ok());
}

#[tokio::test]
async fn a_repeated_token_skips_the_key_lookup_and_expires_with_the_token() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    // Keys are never fresh under this policy, so every real verification fetches.
    let policy = JwksPolicy {
        max_age: Duration::ZERO,
        cooldown: Duration::ZERO,
        ..JwksPolicy::default()
    };
    let v = verifier(&issuer, policy, None, None);
    let mut c = claims("alex", &["general"]);
    let exp = now() + 120;
    c["exp"] = json!(exp);
    let token = key.token(&c);
    v.verify(&token).await.unwrap();
    assert_eq!(issuer.fetches(), 1);
    for _ in 0..5 {
        v.verify(&token).await.unwrap();
    }
    assert_eq!(
        issuer.fetches(),
        1,
        "repeats are answered from the verified-token cache"
    );

    // Past its exp (and the leeway), the cached token is refused like any other.
    let err = v.verify_at(&token, exp + 61).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    // Another token is verified for real.
    v.verify(&key.token(&claims("sam", &["general"])))
        .await
        .unwrap();
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn every_single_character_change_is_refused_cleanly() {
    let (key, issuer) = Issuer::with(TestKey::es256("ec-1")).await;
    let v = verifier(&issuer, JwksPolicy::default(), None, None);
    let token = key.token(&claims("alex", &["general"]));
    v.verify(&token).await.unwrap();
    let alphabet = ['A', 'z', '0', '-', '_', '.', '=', ' ', 'é', '\u{0}'];
    let mut tried = 0;
    for (i, original) in token.char_indices() {
        for (n, replacement) in alphabet.iter().enumerate() {
            // A few replacements per position keep the run short while covering every part.
            if *replacement == original || (i + n) % 3 != 0 {
                continue;
            }
            let mut mutated = token.clone();
            mutated.replace_range(i..i + original.len_utf8(), &replacement.to_string());
            tried += 1;
            match v.verify(&mutated).await {
                Err(e) => assert!(
                    matches!(e.kind, ErrorKind::BadRequest | ErrorKind::AccessDenied),
                    "position {i}: {e}"
                ),
                // Not even a change in base64's unused low bits: non-canonical encodings are refused.
                Ok(_) => panic!("position {i}: a changed token was accepted"),
            }
        }
    }
    assert!(tried > 300, "{tried}");
}

/// L4: a context token may live at most a day (`chat/maxTokenLifetime`), `iat` to `exp`, or
/// now to `exp` without `iat`: a revocation, kept 366 days, outlasts every token it refuses.
#[tokio::test]
async fn a_context_token_lives_at_most_the_maximum() {
    use context_chat::settings::SettingsSource;
    use context_chat::{App, AppOptions};

    let (key, issuer) = Issuer::with(TestKey::es256("k1")).await;
    let token = |iat: Option<u64>, exp: u64| {
        let mut c = claims("alex", &["general"]);
        match iat {
            Some(iat) => c["iat"] = json!(iat),
            None => {
                c.as_object_mut().unwrap().remove("iat");
            }
        }
        c["exp"] = json!(exp);
        key.token(&c)
    };
    let app = |max: Option<&str>| {
        let mut env: std::collections::HashMap<String, String> =
            test_support::twilio::credentials_env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        env.insert("CHAT_JWKS_URL".into(), issuer.url());
        if let Some(max) = max {
            env.insert("CHAT_MAX_TOKEN_LIFETIME".into(), max.into());
        }
        App::new(SettingsSource::env_vars(env), AppOptions::default())
    };
    let (t, day) = (now(), 24 * 3600);

    let default = app(None);
    for ok in [
        token(Some(t), t + day),
        token(Some(t - day + 60), t + 60),
        token(None, t + day - 5),
    ] {
        default.tokens().verify_token(&ok).await.unwrap();
    }
    for long in [
        token(Some(t), t + day + 1),
        token(Some(t - 400 * day), t + 60),
        token(None, t + day + 60),
        token(Some(t), t + 10 * 365 * day),
    ] {
        let err = default.tokens().verify_token(&long).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::AccessDenied, "{}", err.message);
        assert!(
            err.message.contains("chat/maxTokenLifetime"),
            "{}",
            err.message
        );
    }

    let two_hours = app(Some("7200"));
    two_hours
        .tokens()
        .verify_token(&token(Some(t), t + 7200))
        .await
        .unwrap();
    let err = two_hours
        .tokens()
        .verify_token(&token(Some(t), t + 7201))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    for bad in ["59", "31536001", "a day"] {
        let err = app(Some(bad))
            .tokens()
            .verify_token(&token(Some(t), t + 60))
            .await
            .unwrap_err();
        assert!(
            err.message.contains("CHAT_MAX_TOKEN_LIFETIME"),
            "{bad}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn roles_name_contexts_of_the_token_and_known_roles_or_the_token_is_a_bad_request() {
    let key = TestKey::es256("k1");
    let issuer = Issuer::start(jwks(&[&key])).await;
    let v = verifier(&issuer, JwksPolicy::default(), None, None);
    let with_roles = |roles: Value| {
        let mut c = claims("alex", &["general", "announcements", "SHIPMENT-42"]);
        c["roles"] = roles;
        key.token(&c)
    };
    let verified = v
        .verify(&with_roles(
            json!({"announcements": "reader", "SHIPMENT-42": "moderator", "general": "member"}),
        ))
        .await
        .unwrap();
    use context_chat::names::Role;
    assert_eq!(
        verified.roles,
        [
            ("SHIPMENT-42".to_owned(), Role::Moderator),
            ("announcements".to_owned(), Role::Reader),
        ]
    );
    assert_eq!(verified.role_in("general"), Role::Member);
    assert_eq!(verified.role_in("announcements"), Role::Reader);
    // Without the claim, or with it null or empty: a member everywhere, as before roles.
    for roles in [Value::Null, json!({})] {
        let verified = v.verify(&with_roles(roles)).await.unwrap();
        assert!(verified.roles.is_empty());
    }
    for bad in [
        json!({"elsewhere": "reader"}),
        json!({"general": "owner"}),
        json!({"general": 1}),
        json!(["general"]),
        json!("reader"),
    ] {
        assert_eq!(
            kind_of(&v, &with_roles(bad.clone())).await,
            ErrorKind::BadRequest,
            "{bad}"
        );
    }
}
