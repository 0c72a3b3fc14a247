//! The fuzz targets' bodies (`fuzz/fuzz_targets/*.rs` are one line each): every parser that
//! takes outside input, fed what the fuzzer makes of it. Where a signature would stop the
//! fuzzer at the door, the input is signed here with the fixed key, so that what lies behind
//! the signature (claims, event fields, resolvers) is fuzzed too.
//!
//! Each target also checks what must hold of an answer (an accepted token names someone; an
//! error is of the contract's kinds), not only that nothing panics.

use std::sync::OnceLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use context_chat::context_token::keys::{KeySet, parse_jwks};
use context_chat::context_token::{JwksCache, Verifier};
use context_chat::notifications::webhook::{WebhookRequest, read_event};
use context_chat::platform::token::{PlatformVerifier, Scope};
use context_chat::twilio::webhook_signature::SignatureChecker;
use secrecy::SecretString;
use serde_json::{Value, json};

mod graphql;
pub use graphql::graphql;

/// The time the token targets verify at (2027-01-15).
pub const NOW: u64 = 1_800_000_000;
/// The kid of the fixed key.
pub const KID: &str = "fuzz-ed25519";
/// The issuer of the platform's access tokens.
pub const PLATFORM_ISSUER: &str = "https://auth.fuzz.example/";
/// The URL Twilio signs webhooks for, and the auth token it signs with.
pub const WEBHOOK_URL: &str = "https://chat.fuzz.example/twilio/webhook";
const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn key() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| Ed25519KeyPair::from_seed_unchecked(&[7; 32]).expect("a 32-byte seed"))
}

/// The fixed key set: the fixed key as a JWK (the `jwks` target fuzzes the other shapes).
pub fn jwks_document() -> Vec<u8> {
    let x = URL_SAFE_NO_PAD.encode(key().public_key().as_ref());
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": KID, "x": x}]})
        .to_string()
        .into_bytes()
}

fn key_set() -> KeySet {
    parse_jwks(&jwks_document())
        .expect("the fixed JWKS parses")
        .0
}

/// `header.payload.signature` with the fixed key, whatever the header and payload say.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key().sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// A well-formed token of the fixed key with these claims.
pub fn signed_token(claims: &Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": KID});
    sign(header.to_string().as_bytes(), claims.to_string().as_bytes())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// The token an input stands for: mode byte even, the rest as the token's text; odd, the
/// rest as `header` NUL `payload` (or the payload under the usual header), signed.
fn token_of(data: &[u8]) -> Option<String> {
    let (&mode, rest) = data.split_first()?;
    Some(if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        match rest.iter().position(|b| *b == 0) {
            Some(at) => sign(&rest[..at], &rest[at + 1..]),
            None => sign(
                json!({"alg": "EdDSA", "typ": "JWT", "kid": KID})
                    .to_string()
                    .as_bytes(),
                rest,
            ),
        }
    })
}

/// Context token verification against the fixed key set. Whether it was accepted.
pub fn context_token(data: &[u8]) -> bool {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| Verifier::new(JwksCache::fixed(key_set()), None, None));
    let Some(token) = token_of(data) else {
        return false;
    };
    match runtime().block_on(verifier.verify_at(&token, NOW)) {
        Ok(verified) => {
            assert!(
                context_chat::names::check_identity(&verified.identity).is_ok(),
                "an accepted token names a valid identity: {:?}",
                verified.identity
            );
            for context in &verified.contexts {
                assert!(
                    context_chat::names::check_context(context).is_ok(),
                    "an accepted context is a valid name: {context:?}"
                );
            }
            true
        }
        Err(err) => {
            assert_contract_error(&err);
            false
        }
    }
}

/// Platform access tokens, as the platform API checks them (`Authorization` header). The
/// scopes it was accepted for.
pub fn platform_token(data: &[u8]) -> Vec<Scope> {
    static VERIFIER: OnceLock<PlatformVerifier> = OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        PlatformVerifier::new(
            JwksCache::fixed(key_set()),
            PLATFORM_ISSUER.into(),
            Some("context-chat".into()),
        )
    });
    // The first byte: `Bearer <token>` (even) or the bare token, as AppSync's OIDC mode
    // passes it (odd); then a token as the context token target reads one.
    let Some((&style, rest)) = data.split_first() else {
        return Vec::new();
    };
    let Some(token) = token_of(rest) else {
        return Vec::new();
    };
    let authorization = if style % 2 == 0 {
        format!("Bearer {token}")
    } else {
        token
    };
    let mut granted = Vec::new();
    for needs in [Scope::Read, Scope::Admin] {
        match runtime().block_on(verifier.verify_at(&authorization, needs, NOW)) {
            Ok(caller) => {
                assert!(!caller.client.is_empty());
                assert!(caller.scopes.iter().any(|s| s == needs.as_str()));
                granted.push(needs);
            }
            Err(err) => assert_contract_error(&err),
        }
    }
    granted
}

/// JWKS documents, both shapes (JWKs, and `{"kid", "key": PEM}` entries). The keys read.
pub fn jwks(data: &[u8]) -> usize {
    let Ok((set, skipped)) = parse_jwks(data) else {
        return 0;
    };
    {
        assert!(set.len() <= 100, "at most 100 keys are read");
        // One reason per key looked at, and one line for the keys past the first 100.
        assert!(skipped.len() <= 101, "{}", skipped.len());
        for kid in set.kids() {
            assert!(!kid.is_empty());
        }
    }
    set.len()
}

/// Twilio's webhook: mode 0, the rest as a body with an arbitrary signature header (its
/// first line); mode 1, a form body signed as Twilio signs; mode 2, a JSON body signed so.
/// `Ok(true)`: a message event to queue; `Ok(false)`: ignored; `Err`: refused, with its kind.
pub fn webhook(data: &[u8]) -> Result<bool, context_chat::ErrorKind> {
    static CHECKER: OnceLock<SignatureChecker> = OnceLock::new();
    let checker = CHECKER.get_or_init(|| SignatureChecker::new(&SecretString::from(AUTH_TOKEN)));
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(false);
    };
    let (url, content_type, body, signature) = match mode % 3 {
        0 => {
            let at = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            let signature = String::from_utf8_lossy(&rest[..at]).into_owned();
            let body = rest.get(at + 1..).unwrap_or_default();
            let kind = if body.first() == Some(&b'{') {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            };
            (WEBHOOK_URL.to_owned(), kind, body, signature)
        }
        1 => {
            let params: Vec<(String, String)> = url::form_urlencoded::parse(rest)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let signature = sign_webhook(WEBHOOK_URL, &params);
            (
                WEBHOOK_URL.to_owned(),
                "application/x-www-form-urlencoded",
                rest,
                signature,
            )
        }
        _ => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, rest);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            let url = format!("{WEBHOOK_URL}?bodySHA256={hex}");
            let signature = sign_webhook(&url, &[]);
            (url, "application/json", rest, signature)
        }
    };
    let request = WebhookRequest {
        url: &url,
        signature: Some(&signature),
        content_type: Some(content_type),
        body,
    };
    match read_event(&request, checker) {
        Ok(Some(context_chat::notifications::webhook::Inbound::Message(event))) => {
            assert!(event.conversation_sid.starts_with("CH"));
            assert!(event.message_sid.starts_with("IM"));
            Ok(true)
        }
        Ok(Some(context_chat::notifications::webhook::Inbound::SmsReply(reply))) => {
            assert!(reply.message_sid.starts_with("SM") || reply.message_sid.starts_with("MM"));
            assert!(reply.from.as_str().starts_with('+'));
            Ok(true)
        }
        Ok(None) => Ok(false),
        Err(err) => {
            assert_contract_error(&err);
            // What Twilio signed is never refused for its signature.
            if mode % 3 != 0 {
                assert_ne!(err.kind, context_chat::ErrorKind::AccessDenied, "{err}");
            }
            Err(err.kind)
        }
    }
}

/// `X-Twilio-Signature` as Twilio computes it: HMAC-SHA1 over the URL and the sorted
/// parameters, base64.
fn sign_webhook(url: &str, params: &[(String, String)]) -> String {
    let sorted: std::collections::BTreeSet<&(String, String)> = params.iter().collect();
    let message = sorted
        .into_iter()
        .fold(url.to_owned(), |m, (name, value)| m + name + value);
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        AUTH_TOKEN.as_bytes(),
    );
    STANDARD.encode(aws_lc_rs::hmac::sign(&key, message.as_bytes()))
}

/// An error a caller can act on: a message, and never a whole token echoed back.
fn assert_contract_error(err: &context_chat::ChatError) {
    assert!(!err.message.is_empty());
    assert!(err.message.len() < 1024, "a short message: {}", err.message);
}
