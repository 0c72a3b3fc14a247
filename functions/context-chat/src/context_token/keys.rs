//! Turns a JWKS document into verification keys, each bound to exactly one algorithm.
//!
//! Both shapes of `shared/PRODUCT.md` are read: the legacy one (`key` holds a PEM) and
//! RFC 7517 (EC P-256, RSA of at least 2048 bits, OKP Ed25519). Keys that cannot be used
//! are skipped with a reason, so one odd key does not take the issuer's others down.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

/// Keys beyond this many are ignored; real issuers publish a handful.
const MAX_KEYS: usize = 100;
const MIN_RSA_BITS: usize = 2048;

/// A public key and the one algorithm tokens signed with it must name. The key is parsed
/// once, when the JWKS is read, not on every verification.
pub struct VerifyKey {
    pub alg: Algorithm,
    key: ParsedPublicKey,
}

impl VerifyKey {
    fn new(alg: Algorithm, bytes: &[u8]) -> Result<Self, String> {
        let verification =
            verification_algorithm(alg).ok_or_else(|| format!("alg {alg:?} is not accepted"))?;
        let key = ParsedPublicKey::new(verification, bytes)
            .map_err(|e| format!("the key is not a valid {alg:?} public key ({e})"))?;
        Ok(Self { alg, key })
    }

    /// Whether `signature` (JWS form: fixed-size r||s for ECDSA) signs `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

fn verification_algorithm(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::EdDSA => &signature::ED25519,
        _ => return None,
    })
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
            VerifyKey::new(Algorithm::ES256, &point)
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
            VerifyKey::new(alg, &rsa_public_key_der(&n, &e))
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
            VerifyKey::new(Algorithm::EdDSA, &x)
        }
        other => Err(format!("kty {other:?} is not accepted")),
    }
}

/// The old integration published `{"alg":"ES256","key":"-----BEGIN PUBLIC KEY-----…"}`.
/// Without `alg`, ES256 is assumed: it is the only algorithm the old scripts made.
fn legacy_key(pem_text: &str, declared: Option<Algorithm>) -> Result<VerifyKey, String> {
    let alg = declared.unwrap_or(Algorithm::ES256);
    let parsed = pem::parse(pem_text).map_err(|_| "key is not PEM".to_owned())?;
    if parsed.tag() != "PUBLIC KEY" {
        return Err(format!("key is a PEM {:?}, not a PUBLIC KEY", parsed.tag()));
    }
    let spki = parsed.contents();
    match alg {
        Algorithm::ES256
            if !(spki.len() == P256_SPKI_PREFIX.len() + 65
                && spki.starts_with(&P256_SPKI_PREFIX)) =>
        {
            return Err("key is not a P-256 public key".into());
        }
        alg if is_rsa(alg) => {
            let bits = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki)
                .map(|k| k.key_size_bits())
                .map_err(|_| "key is not an RSA public key".to_owned())?;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})"
                ));
            }
        }
        _ => {}
    }
    VerifyKey::new(alg, spki)
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point.
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, the form
/// aws-lc reads an RSA key in, made from a JWK's `n` and `e`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(big_endian: &[u8]) -> Vec<u8> {
        let digits: Vec<u8> = big_endian.iter().copied().skip_while(|b| *b == 0).collect();
        let mut content = Vec::with_capacity(digits.len() + 1);
        if digits.first().is_none_or(|b| b & 0x80 != 0) {
            content.push(0); // Keep it positive (and non-empty).
        }
        content.extend(digits);
        tagged(0x02, &content)
    }
    fn tagged(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    let mut body = integer(n);
    body.extend(integer(e));
    tagged(0x30, &body)
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
    fn rsa_public_key_der_is_pkcs1() {
        // SEQUENCE { INTEGER 0x00 0x80 (kept positive), INTEGER 0x01 0x00 0x01 }
        assert_eq!(
            rsa_public_key_der(&[0, 0x80], &[1, 0, 1]),
            [
                0x30, 0x09, 0x02, 0x02, 0x00, 0x80, 0x02, 0x03, 0x01, 0x00, 0x01
            ]
        );
        // Long-form lengths for a 2048-bit modulus.
        let der = rsa_public_key_der(&[0xff; 256], &[1, 0, 1]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..8], &[0x02, 0x82, 0x01, 0x01]);
    }

    #[test]
    fn significant_bits_ignores_leading_zeros() {
        assert_eq!(significant_bits(&[0, 0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[]), 0);
    }
}
