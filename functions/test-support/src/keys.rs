//! Signing keys of every accepted type, and a raw token builder that can also make the
//! malformed and hostile tokens a verifier must refuse.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits, when needed, so that what follows starts early in a clock minute: a test's mints
/// then share the minting limit's one-minute window.
pub async fn early_in_a_minute() {
    let into = now() % 60;
    if into > 35 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - into)).await;
    }
}

enum Pair {
    Es256 {
        fixed: EcdsaKeyPair,
        asn1: EcdsaKeyPair,
    },
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A key of an issuer, with its kid.
pub struct TestKey {
    pub kid: String,
    pair: Pair,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap();
        let fixed =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let asn1 =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.into(),
            pair: Pair::Es256 { fixed, asn1 },
        }
    }

    pub fn rs256(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: Pair::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        }
    }

    pub fn eddsa(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: Pair::EdDsa(Ed25519KeyPair::generate().unwrap()),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Es256 { .. } => "ES256",
            Pair::Rs256(_) => "RS256",
            Pair::EdDsa(_) => "EdDSA",
        }
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Es256 { fixed, .. } => fixed.public_key().as_der().unwrap().as_ref().to_vec(),
            Pair::Rs256(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
            Pair::EdDsa(pair) => pair.public_key().as_der().unwrap().as_ref().to_vec(),
        }
    }

    pub fn public_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der()))
    }

    /// The key as RFC 7517 publishes it.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Es256 { fixed, .. } => {
                let point = fixed.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Rs256(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::EdDsa(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg());
        jwk["use"] = json!("sig");
        jwk
    }

    /// The key as the old integration published it: a PEM under `key`.
    pub fn legacy_jwk(&self) -> Value {
        json!({"alg": self.alg(), "kid": self.kid, "use": "sig", "key": self.public_pem()})
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Es256 { fixed, .. } => fixed.sign(&rng, message).unwrap().as_ref().to_vec(),
            Pair::Rs256(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .unwrap();
                sig
            }
            Pair::EdDsa(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// An ES256 signature in ASN.1 DER form, which JWS does not allow.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Es256 { asn1, .. } => asn1
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            _ => panic!("DER signatures are an ES256 matter"),
        }
    }

    /// A token with this key's alg and kid over `claims`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(
            &json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// A token with any header, signed by this key.
    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.sign(message.as_bytes());
        format!("{message}.{}", b64(signature))
    }
}

/// The claims of a compact JWT, unverified: what a test reads of a token it was handed.
pub fn jwt_payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("a compact JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Claims a platform would sign: `sub`, `contexts`, `iat`, and `exp` an hour ahead.
pub fn claims(sub: &str, contexts: &[&str]) -> Value {
    let now = now();
    json!({"sub": sub, "contexts": contexts, "iat": now, "exp": now + 3600})
}

/// A JWKS document of the keys, RFC 7517 shape.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// A JWKS document of the keys, legacy shape.
pub fn legacy_jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.legacy_jwk()).collect::<Vec<_>>()})
}
