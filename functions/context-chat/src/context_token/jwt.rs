//! What every kind of JWT this product accepts goes through, in this order so that nothing
//! a token says is trusted before its signature is (RFC 8725): size, header (`alg` from the
//! allowed list and equal to the key's, a `kid`, no `crit`), the key from the issuer's JWKS,
//! the signature, then the registered claims (`exp` required; `nbf`, `iat`; `iss` and `aud`
//! as the kind's rules say). Each kind then reads its own claims from what is returned.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use super::keys::parse_alg;
use crate::error::{ChatError, Result};

/// Larger tokens are refused before any work is done on them.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Allowed clock difference for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 60;

/// The registered claims a kind of token requires.
pub struct Rules<'a> {
    /// `iss` must be exactly this.
    pub issuer: Option<&'a str>,
    /// `aud` must be this, or an array holding it.
    pub audience: Option<&'a str>,
}

/// A token whose signature and registered claims hold.
pub struct Signed {
    pub claims: Map<String, Value>,
    pub expires_at: u64,
    pub issued_at: Option<u64>,
    /// The header's `typ`, when it has one.
    pub typ: Option<String>,
    /// The header's `kid`: the key that signed it.
    pub key_id: String,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// Checks `token`'s signature against `jwks` and its registered claims against `rules`,
/// as of `now` (unix seconds).
pub async fn check(jwks: &JwksCache, token: &str, rules: &Rules<'_>, now: u64) -> Result<Signed> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ChatError::bad_request(format!(
            "The token is larger than {MAX_TOKEN_BYTES} bytes."
        )));
    }
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

    let key = jwks.key(&kid).await?;
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

    let claims: Map<String, Value> = decode_json(payload_b64)
        .ok_or_else(|| malformed("its claims are not a base64url JSON object"))?;
    let exp = numeric_date(claims.get("exp"), "exp")?
        .ok_or_else(|| malformed("it has no exp (expiry)"))?;
    let nbf = numeric_date(claims.get("nbf"), "nbf")?;
    let iat = numeric_date(claims.get("iat"), "iat")?;
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
    if let Some(issuer) = rules.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer)
    {
        return Err(ChatError::access_denied(
            "The token is not from the expected issuer (iss).",
        ));
    }
    if let Some(audience) = rules.audience
        && !audience_matches(claims.get("aud"), audience)
    {
        return Err(ChatError::access_denied(
            "The token is not meant for this service (aud).",
        ));
    }
    Ok(Signed {
        claims,
        expires_at: exp,
        issued_at: iat,
        typ: header.typ,
        key_id: kid,
    })
}

pub fn malformed(why: &str) -> ChatError {
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
