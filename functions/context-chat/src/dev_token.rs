//! The dev-extras token API's logic: sign a context token for any identity and contexts,
//! with the development key, after the same checks the verifier applies.

use crate::dev_keys::{ContextClaims, ContextTokenSigner};
use crate::error::{ChatError, Result};
use crate::names::{check_contexts, check_identity};

pub const DEFAULT_TTL_SECS: u64 = 3600;
pub const MAX_TTL_SECS: u64 = 24 * 3600;

/// A request's query: `identity=alex&context=general,random[&ttl=SECONDS]`. The `context`
/// parameter may also repeat.
pub fn issue(signer: &ContextTokenSigner, query: &[(String, String)], now: u64) -> Result<String> {
    let identity = query
        .iter()
        .find(|(k, _)| k == "identity")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ChatError::bad_request("identity is required, e.g. ?identity=alex&context=general")
        })?;
    check_identity(identity)?;
    let contexts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "context")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if contexts.is_empty() {
        return Err(ChatError::bad_request(
            "context is required: one or more, comma-separated, e.g. context=general,random",
        ));
    }
    let contexts = check_contexts(contexts)?;
    let ttl = match query.iter().find(|(k, _)| k == "ttl") {
        None => DEFAULT_TTL_SECS,
        Some((_, v)) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=MAX_TTL_SECS).contains(t))
            .ok_or_else(|| {
                ChatError::bad_request(format!("ttl must be seconds from 1 to {MAX_TTL_SECS}"))
            })?,
    };
    signer.sign(&ContextClaims {
        sub: identity.to_owned(),
        contexts,
        iat: now,
        exp: now + ttl,
        iss: None,
        aud: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev_keys::generate_es256;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signs_checked_claims_and_refuses_bad_ones() {
        let key = generate_es256().unwrap();
        let signer = ContextTokenSigner::from_pem(&key.private_pem, &key.kid).unwrap();
        let token = issue(
            &signer,
            &q(&[("identity", "alex"), ("context", "general,random,general")]),
            1000,
        )
        .unwrap();
        let payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["sub"], "alex");
        assert_eq!(
            payload["contexts"],
            serde_json::json!(["general", "random"])
        );
        assert_eq!(payload["exp"], 1000 + DEFAULT_TTL_SECS);
        for bad in [
            q(&[("context", "general")]),
            q(&[("identity", "alex")]),
            q(&[("identity", "a b"), ("context", "general")]),
            q(&[("identity", "alex"), ("context", "no/slash")]),
            q(&[
                ("identity", "alex"),
                ("context", "general"),
                ("ttl", "90000"),
            ]),
        ] {
            assert_eq!(
                issue(&signer, &bad, 1000).unwrap_err().kind,
                crate::ErrorKind::BadRequest,
                "{bad:?}"
            );
        }
    }
}
