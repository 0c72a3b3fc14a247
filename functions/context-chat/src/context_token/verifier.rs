//! Context token verification: header, key, signature, then claims, in that order, so that
//! nothing a token says is trusted before its signature is (RFC 8725).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde::Deserialize;
use serde_json::Value;

use super::jwks::JwksCache;
use super::keys::parse_alg;
use crate::error::{ChatError, Result};
use crate::names::{check_contexts, check_identity};

/// Larger tokens are refused before any work is done on them.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Allowed clock difference for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 60;
/// A verified token is taken from the cache for at most this long, so that a key the
/// issuer withdrew stops working within the JWKS cache's own lifetime.
const VERIFIED_TTL_SECS: u64 = 600;
/// Memory for remembered tokens, counted as token bytes plus claims.
const VERIFIED_CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// What a verified context token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub identity: String,
    pub contexts: Vec<String>,
    /// The token's `exp`, unix seconds.
    pub expires_at: u64,
    /// Until when the cache may answer for this token.
    cache_until: u64,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The claims read; types are checked by hand so each fault gets its own message.
#[derive(Deserialize)]
struct Claims {
    sub: Option<Value>,
    contexts: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    iss: Option<Value>,
    aud: Option<Value>,
}

#[derive(Clone)]
struct TokenWeight;

impl Weighter<String, Arc<VerifiedToken>> for TokenWeight {
    fn weight(&self, key: &String, val: &Arc<VerifiedToken>) -> u64 {
        let claims: usize =
            val.identity.len() + val.contexts.iter().map(|c| c.len() + 24).sum::<usize>();
        (key.len() + claims + 128) as u64
    }
}

pub struct Verifier {
    jwks: JwksCache,
    issuer: Option<String>,
    audience: Option<String>,
    verified: Cache<String, Arc<VerifiedToken>, TokenWeight>,
}

impl Verifier {
    pub fn new(jwks: JwksCache, issuer: Option<String>, audience: Option<String>) -> Self {
        Self {
            jwks,
            issuer,
            audience,
            verified: Cache::with_weighter(4096, VERIFIED_CACHE_BYTES, TokenWeight),
        }
    }

    /// Fetches the issuer's keys unless they are already cached.
    pub async fn prefetch_keys(&self) -> Result<()> {
        self.jwks.prefetch().await
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>> {
        self.verify_at(token, now_unix()).await
    }

    /// Verifies as if the time were `now` (unix seconds).
    pub async fn verify_at(&self, token: &str, now: u64) -> Result<Arc<VerifiedToken>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ChatError::bad_request(format!(
                "The token is larger than {MAX_TOKEN_BYTES} bytes."
            )));
        }
        if let Some(hit) = self.verified.get(token) {
            if now < hit.cache_until {
                return Ok(hit);
            }
            self.verified.remove(token);
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        self.verified.insert(token.to_owned(), verified.clone());
        Ok(verified)
    }

    async fn verify_uncached(&self, token: &str, now: u64) -> Result<VerifiedToken> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("it is not a JWT (three dot-separated parts)"));
        };

        let header: Header =
            decode_json(header_b64).ok_or_else(|| malformed("its header is not base64url JSON"))?;
        let alg_name = header
            .alg
            .ok_or_else(|| malformed("its header has no alg"))?;
        let Some(alg) = parse_alg(&alg_name) else {
            return Err(ChatError::access_denied(format!(
                "Tokens signed with {} are not accepted.",
                printable(&alg_name)
            )));
        };
        if header.crit.is_some() {
            return Err(malformed(
                "its header has critical extensions (crit), which are not supported",
            ));
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("its header has no key id (kid)"))?;
        if kid.len() > 256 {
            return Err(malformed("its key id (kid) is too long"));
        }

        let key = self.jwks.key(&kid).await?;
        if key.alg != alg {
            return Err(ChatError::access_denied(format!(
                "The token names {alg:?}, but its key is for {:?}.",
                key.alg
            )));
        }
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];
        let valid = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .is_ok_and(|signature| key.verifies(message.as_bytes(), &signature));
        if !valid {
            return Err(ChatError::access_denied(
                "The token's signature is not valid.",
            ));
        }

        let claims: Claims = decode_json(payload_b64)
            .ok_or_else(|| malformed("its claims are not a base64url JSON object"))?;
        let exp = numeric_date(claims.exp.as_ref(), "exp")?
            .ok_or_else(|| malformed("it has no exp (expiry)"))?;
        let nbf = numeric_date(claims.nbf.as_ref(), "nbf")?;
        let iat = numeric_date(claims.iat.as_ref(), "iat")?;
        if now >= exp.saturating_add(LEEWAY_SECS) {
            return Err(ChatError::access_denied("The token has expired."));
        }
        if nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(ChatError::access_denied(
                "The token is not valid yet (nbf).",
            ));
        }
        if iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
            return Err(ChatError::access_denied(
                "The token was issued in the future (iat).",
            ));
        }
        if let Some(issuer) = &self.issuer
            && claims.iss.as_ref().and_then(Value::as_str) != Some(issuer)
        {
            return Err(ChatError::access_denied(
                "The token is not from the expected issuer (iss).",
            ));
        }
        if let Some(audience) = &self.audience
            && !audience_matches(claims.aud.as_ref(), audience)
        {
            return Err(ChatError::access_denied(
                "The token is not meant for this service (aud).",
            ));
        }

        let identity = match claims.sub {
            Some(Value::String(sub)) => sub,
            Some(_) => return Err(malformed("its sub is not a string")),
            None => return Err(malformed("it has no sub (identity)")),
        };
        check_identity(&identity)?;
        let contexts = match claims.contexts {
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(malformed("its contexts hold something other than strings")),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(malformed("its contexts claim is not an array")),
            None => return Err(malformed("it has no contexts claim")),
        };
        let contexts = check_contexts(contexts)?;

        Ok(VerifiedToken {
            identity,
            contexts,
            expires_at: exp,
            cache_until: exp.min(now + VERIFIED_TTL_SECS),
        })
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn malformed(why: &str) -> ChatError {
    ChatError::bad_request(format!("The token is malformed: {why}."))
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A NumericDate: a non-negative number of seconds; fractions are cut.
fn numeric_date(value: Option<&Value>, name: &str) -> Result<Option<u64>> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| malformed(&format!("its {name} is not a valid time"))),
        Some(_) => Err(malformed(&format!("its {name} is not a number"))),
    }
}

fn audience_matches(aud: Option<&Value>, expected: &str) -> bool {
    match aud {
        Some(Value::String(a)) => a == expected,
        Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

/// An attacker-chosen header value, cut short and stripped of control characters, for messages.
fn printable(value: &str) -> String {
    let cleaned: String = value.chars().filter(|c| !c.is_control()).take(16).collect();
    format!("alg {cleaned:?}")
}
