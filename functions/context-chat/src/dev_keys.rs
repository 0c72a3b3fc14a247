//! Development keys and context tokens: what a platform does in production, done here so
//! that the product can be tried and tested without one (`chatctl keygen|jwks|token`, and
//! local mode's embedded issuer).

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context_token::keys::P256_SPKI_PREFIX;
use crate::error::{ChatError, Result};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An ES256 key pair as PEM, with its kid (the RFC 7638 thumbprint).
pub struct DevKey {
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
}

/// Which JWKS shape to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksShape {
    /// `{"kty":"EC","crv":"P-256","x":…,"y":…}`, as Auth0, Cognito or Keycloak publish.
    Rfc7517,
    /// `{"alg":"ES256","key":"-----BEGIN PUBLIC KEY-----…"}`, as the old integration published.
    Legacy,
}

pub fn generate_es256() -> Result<DevKey> {
    let failed = |_| ChatError::internal("Could not generate an ES256 key.");
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
    let pkcs8 = pair.to_pkcs8v1().map_err(failed)?;
    let spki = pair.public_key().as_der().map_err(failed)?;
    let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
    Ok(DevKey {
        kid: thumbprint(&public_pem)?,
        private_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())),
        public_pem,
    })
}

/// The public key PEM of an ES256 private key PEM (PKCS#8).
pub fn public_pem_of(private_pem: &str) -> Result<String> {
    let bad = || ChatError::bad_request("The private key is not a PKCS#8 P-256 PEM.");
    let der = pem::parse(private_pem).map_err(|_| bad())?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.contents())
        .map_err(|_| bad())?;
    let spki = pair.public_key().as_der().map_err(|_| bad())?;
    Ok(pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        spki.as_ref().to_vec(),
    )))
}

/// The RFC 7517 JWK of a P-256 or Ed25519 public key PEM, without kid/alg/use.
fn public_jwk(public_pem: &str) -> Result<Value> {
    let bad = || ChatError::bad_request("The public key is not a P-256 or Ed25519 PEM public key.");
    let parsed = pem::parse(public_pem).map_err(|_| bad())?;
    let der = parsed.contents();
    if der.len() == P256_SPKI_PREFIX.len() + 65 && der.starts_with(&P256_SPKI_PREFIX) {
        let point = &der[P256_SPKI_PREFIX.len()..];
        Ok(json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }))
    } else if der.len() == ED25519_SPKI_PREFIX.len() + 32 && der.starts_with(&ED25519_SPKI_PREFIX) {
        Ok(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&der[ED25519_SPKI_PREFIX.len()..]),
        }))
    } else {
        Err(bad())
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
pub fn thumbprint(public_pem: &str) -> Result<String> {
    let jwk = public_jwk(public_pem)?;
    // serde_json's Map is ordered by key (no preserve_order feature), as RFC 7638 needs.
    let canonical =
        serde_json::to_string(&jwk).map_err(|_| ChatError::internal("JWK encoding failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}

/// A JWKS holding one public key, in the chosen shape.
pub fn jwks_json(public_pem: &str, kid: &str, shape: JwksShape) -> Result<Value> {
    let mut jwk = public_jwk(public_pem)?;
    let alg = if jwk["kty"] == "EC" { "ES256" } else { "EdDSA" };
    let key = match shape {
        JwksShape::Rfc7517 => {
            jwk["kid"] = json!(kid);
            jwk["alg"] = json!(alg);
            jwk["use"] = json!("sig");
            jwk
        }
        JwksShape::Legacy => json!({
            "alg": alg,
            "kid": kid,
            "use": "sig",
            "key": public_pem.trim(),
        }),
    };
    Ok(json!({ "keys": [key] }))
}

/// Signs context tokens with an ES256 private key, as a platform would.
pub struct ContextTokenSigner {
    kid: String,
    key: EncodingKey,
}

/// The claims of a context token.
#[derive(Debug, Clone, Serialize)]
pub struct ContextClaims {
    pub sub: String,
    pub contexts: Vec<String>,
    pub iat: u64,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Contexts' roles other than member (`reader`, `moderator`): adr/004.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub roles: std::collections::BTreeMap<String, String>,
}

impl ContextTokenSigner {
    pub fn from_pem(private_pem: &str, kid: &str) -> Result<Self> {
        let key = EncodingKey::from_ec_pem(private_pem.as_bytes())
            .map_err(|_| ChatError::bad_request("The private key is not a PKCS#8 P-256 PEM."))?;
        Ok(Self {
            kid: kid.to_owned(),
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &ContextClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|_| ChatError::internal("Signing the context token failed."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_both_jwks_shapes() {
        let key = generate_es256().unwrap();
        assert_eq!(public_pem_of(&key.private_pem).unwrap(), key.public_pem);
        assert_eq!(key.kid.len(), 43, "a base64url SHA-256");
        for shape in [JwksShape::Rfc7517, JwksShape::Legacy] {
            let jwks = jwks_json(&key.public_pem, &key.kid, shape).unwrap();
            let (set, skipped) =
                crate::context_token::keys::parse_jwks(jwks.to_string().as_bytes()).unwrap();
            assert!(skipped.is_empty(), "{skipped:?}");
            assert_eq!(set.get(&key.kid).unwrap().alg, Algorithm::ES256);
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example_shape() {
        // The same key always gets the same kid; another key another one.
        let a = generate_es256().unwrap();
        let b = generate_es256().unwrap();
        assert_eq!(thumbprint(&a.public_pem).unwrap(), a.kid);
        assert_ne!(a.kid, b.kid);
    }
}
