//! Turns a JWKS document into verification keys, each bound to exactly one algorithm.
//!
//! Both shapes of `shared/PRODUCT.md` are read: the legacy one (`key` holds a PEM) and
//! RFC 7517 (EC P-256, RSA of at least 2048 bits, OKP Ed25519). Keys that cannot be used
//! are skipped with a reason, so one odd key does not take the issuer's others down.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Keys beyond this many are ignored; real issuers publish a handful.
const MAX_KEYS: usize = 100;
const MIN_RSA_BITS: usize = 2048;

/// A public key and the one algorithm tokens signed with it must name.
pub struct VerifyKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The usable keys of one JWKS document, by kid.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerifyKey>>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The algorithms a context token may name. `none` and HMAC are never among them.
pub fn parse_alg(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "EdDSA" | "Ed25519" => Algorithm::EdDSA,
        _ => return None,
    })
}

fn is_rsa(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

/// Parses a JWKS document. Returns the key set and, for the log, why keys were skipped.
/// A document that is not a JWKS at all is an error.
pub fn parse_jwks(body: &[u8]) -> Result<(KeySet, Vec<String>), String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON ({e})"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no \"keys\" array")?;

    let mut set = KeySet::default();
    let mut skipped = Vec::new();
    for (index, jwk) in keys.iter().take(MAX_KEYS).enumerate() {
        let Some(jwk) = jwk.as_object() else {
            skipped.push(format!("key #{index}: not an object"));
            continue;
        };
        let kid = match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) if !kid.is_empty() => kid,
            _ => {
                skipped.push(format!("key #{index}: no kid"));
                continue;
            }
        };
        match parse_key(jwk) {
            Ok(key) => {
                if set.keys.contains_key(kid) {
                    skipped.push(format!("key {kid:?}: repeats a kid, the first one is used"));
                } else {
                    set.keys.insert(kid.to_owned(), Arc::new(key));
                }
            }
            Err(reason) => skipped.push(format!("key {kid:?}: {reason}")),
        }
    }
    if keys.len() > MAX_KEYS {
        skipped.push(format!(
            "{} keys past the first {MAX_KEYS} ignored",
            keys.len() - MAX_KEYS
        ));
    }
    Ok((set, skipped))
}

fn str_field<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn parse_key(jwk: &Map<String, Value>) -> Result<VerifyKey, String> {
    if let Some(usage) = str_field(jwk, "use")?
        && usage != "sig"
    {
        return Err(format!("use is {usage:?}, not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("key_ops does not allow \"verify\"".into());
        }
    }
    let declared = match str_field(jwk, "alg")? {
        None => None,
        Some(alg) => Some(parse_alg(alg).ok_or_else(|| format!("alg {alg:?} is not accepted"))?),
    };

    if let Some(pem) = str_field(jwk, "key")? {
        return legacy_key(pem, declared);
    }

    let kty = str_field(jwk, "kty")?.ok_or("no kty and no key")?;
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = str_field(jwk, name)?.ok_or_else(|| format!("no \"{name}\""))?;
        URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    match kty {
        "EC" => {
            let crv = str_field(jwk, "crv")?.unwrap_or_default();
            if crv != "P-256" {
                return Err(format!("EC curve {crv:?} is not accepted (only P-256)"));
            }
            expect_alg(declared, Algorithm::ES256)?;
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes each".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(VerifyKey {
                alg: Algorithm::ES256,
                key: DecodingKey::from_ec_der(&point),
            })
        }
        "RSA" => {
            let alg = declared.unwrap_or(Algorithm::RS256);
            if !is_rsa(alg) {
                return Err(format!("alg {alg:?} does not fit an RSA key"));
            }
            let (n, e) = (bytes("n")?, bytes("e")?);
            let bits = significant_bits(&n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})"
                ));
            }
            Ok(VerifyKey {
                alg,
                key: DecodingKey::from_rsa_raw_components(&n, &e),
            })
        }
        "OKP" => {
            let crv = str_field(jwk, "crv")?.unwrap_or_default();
            if crv != "Ed25519" {
                return Err(format!("OKP curve {crv:?} is not accepted (only Ed25519)"));
            }
            expect_alg(declared, Algorithm::EdDSA)?;
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("an Ed25519 key must be 32 bytes".into());
            }
            Ok(VerifyKey {
                alg: Algorithm::EdDSA,
                key: DecodingKey::from_ed_der(&x),
            })
        }
        other => Err(format!("kty {other:?} is not accepted")),
    }
}

/// The old integration published `{"alg":"ES256","key":"-----BEGIN PUBLIC KEY-----…"}`.
/// Without `alg`, ES256 is assumed: it is the only algorithm the old scripts made.
fn legacy_key(pem: &str, declared: Option<Algorithm>) -> Result<VerifyKey, String> {
    let alg = declared.unwrap_or(Algorithm::ES256);
    let bad_pem = |_| format!("key is not a PEM public key for {alg:?}");
    let key = match alg {
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()).map_err(bad_pem)?,
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()).map_err(bad_pem)?,
        alg if is_rsa(alg) => {
            let bits = pem::parse(pem)
                .ok()
                .and_then(|p| aws_lc_rs::rsa::PublicEncryptingKey::from_der(p.contents()).ok())
                .map(|k| k.key_size_bits())
                .ok_or_else(|| format!("key is not a PEM public key for {alg:?}"))?;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})"
                ));
            }
            DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(bad_pem)?
        }
        other => return Err(format!("alg {other:?} is not accepted")),
    };
    if alg == Algorithm::ES256 && !is_p256_spki_pem(pem) {
        return Err("key is not a P-256 public key".into());
    }
    Ok(VerifyKey { alg, key })
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn is_p256_spki_pem(pem_text: &str) -> bool {
    pem::parse(pem_text).is_ok_and(|p| {
        let der = p.contents();
        der.len() == P256_SPKI_PREFIX.len() + 65 && der.starts_with(&P256_SPKI_PREFIX)
    })
}

fn expect_alg(declared: Option<Algorithm>, implied: Algorithm) -> Result<(), String> {
    match declared {
        Some(alg) if alg != implied => Err(format!("alg {alg:?} does not fit this key type")),
        _ => Ok(()),
    }
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let skip = big_endian.iter().take_while(|b| **b == 0).count();
    match big_endian.get(skip) {
        None => 0,
        Some(first) => (big_endian.len() - skip) * 8 - first.leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_unknown_key_types_are_skipped_not_fatal() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"},
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"},
            {"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},
            {"kid":"none","alg":"none","kty":"EC"},
            "junk"
        ]}"#;
        let (set, skipped) = parse_jwks(doc).unwrap();
        assert!(set.is_empty());
        assert_eq!(skipped.len(), 6, "{skipped:?}");
    }

    #[test]
    fn not_a_jwks_is_an_error() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(br#"{"nokeys":[]}"#).is_err());
    }

    #[test]
    fn significant_bits_ignores_leading_zeros() {
        assert_eq!(significant_bits(&[0, 0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[]), 0);
    }
}
