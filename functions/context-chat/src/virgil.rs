//! Virgil E3Kit JWTs, made as Virgil's own SDKs make them (`adr/014-virgil-tokens.md`):
//! header `{"alg":"VEDS512","kid":…,"typ":"JWT","cty":"virgil-jwt;v=1"}`, payload
//! `{"iss":"virgil-<app id>","sub":"identity-<identity>","iat":…,"exp":…}`, and as signature
//! plain Ed25519 over the SHA-512 digest of the signing input, wrapped in Virgil's DER
//! `SEQUENCE { AlgorithmIdentifier(sha512), OCTET STRING sig }`.
//!
//! Hand-built: no JWT crate knows VEDS512, and the bytes must be Virgil's.

use aws_lc_rs::digest::{SHA512, digest};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{ChatError, Result};

/// Virgil's SDKs' default lifetime.
pub const DEFAULT_TTL_SECS: u64 = 20 * 60;
/// The longest lifetime the settings accept.
pub const MAX_TTL_SECS: u64 = 24 * 60 * 60;

/// `SEQUENCE (81) { SEQUENCE { OID 2.16.840.1.101.3.4.2.3 (sha512), NULL }, OCTET STRING (64) }`
/// up to the signature's 64 bytes: every Virgil signature starts so, and is 83 bytes long.
const SIGNATURE_DER_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];
pub const SIGNATURE_DER_LEN: usize = SIGNATURE_DER_PREFIX.len() + 64;

/// A PKCS#8 v1 Ed25519 private key up to its 32-byte seed: the form Virgil's dashboard, CLI
/// and `exportPrivateKey` give (`MC4CAQAwBQYDK2VwBCIEI…` in base64).
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// A SubjectPublicKeyInfo of Ed25519 up to its 32 bytes: Virgil's `exportPublicKey` form.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why an app key was refused; it never holds the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not an Ed25519 private key (PKCS#8, in base64 or PEM)")]
pub struct MalformedKey;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
    cty: &'static str,
}

#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// Mints Virgil JWTs for one Virgil application and app key; built once per settings load.
pub struct VirgilSigner {
    app_id: String,
    app_key_id: String,
    issuer: String,
    ttl_secs: u64,
    key: Ed25519KeyPair,
    header_b64: String,
}

impl VirgilSigner {
    /// `app_key` as Virgil prints it (base64 of PKCS#8 DER) or as PEM. The ids are copied
    /// into the token unchanged; callers check them (settings do).
    pub fn new(
        app_id: &str,
        app_key_id: &str,
        app_key: &SecretString,
        ttl_secs: u64,
    ) -> Result<Self, MalformedKey> {
        let key = parse_app_key(app_key.expose_secret())?;
        let header = Header {
            alg: "VEDS512",
            kid: app_key_id,
            typ: "JWT",
            cty: "virgil-jwt;v=1",
        };
        // Serializing borrowed strings cannot fail.
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        Ok(Self {
            app_id: app_id.to_owned(),
            app_key_id: app_key_id.to_owned(),
            issuer: format!("virgil-{app_id}"),
            ttl_secs: ttl_secs.clamp(1, MAX_TTL_SECS),
            key,
            header_b64: URL_SAFE_NO_PAD.encode(header_json),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// The app key's public half as Virgil exports it (base64 SubjectPublicKeyInfo DER): what
    /// Virgil's dashboard holds, and what `JwtVerifier` takes.
    pub fn public_key_base64(&self) -> String {
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(self.key.public_key().as_ref());
        STANDARD.encode(spki)
    }

    /// A token for `identity` issued at `issued_at` (unix seconds). Virgil's JS SDK encodes
    /// token JSON as Latin-1, so only ASCII identities give the same bytes everywhere: others
    /// are `BadRequest`.
    pub fn mint(&self, identity: &str, issued_at: u64) -> Result<String> {
        check_identity(identity)?;
        let subject = format!("identity-{identity}");
        let payload = Payload {
            iss: &self.issuer,
            sub: &subject,
            iat: issued_at,
            exp: issued_at + self.ttl_secs,
        };
        let payload_json = serde_json::to_vec(&payload).unwrap_or_default();
        let mut token = String::with_capacity(self.header_b64.len() + payload_json.len() * 2 + 120);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload_json, &mut token);
        let signature = self.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Virgil's signer: Ed25519 (not Ed25519ph) over the 64-byte SHA-512 digest, in DER.
    fn sign(&self, data: &[u8]) -> [u8; SIGNATURE_DER_LEN] {
        let signature = self.key.sign(digest(&SHA512, data).as_ref());
        let mut der = [0u8; SIGNATURE_DER_LEN];
        der[..SIGNATURE_DER_PREFIX.len()].copy_from_slice(&SIGNATURE_DER_PREFIX);
        der[SIGNATURE_DER_PREFIX.len()..].copy_from_slice(signature.as_ref());
        der
    }
}

impl std::fmt::Debug for VirgilSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirgilSigner")
            .field("app_id", &self.app_id)
            .field("app_key_id", &self.app_key_id)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Printable ASCII, at most 1024 characters: what gives the same token bytes in every
/// Virgil SDK.
fn check_identity(identity: &str) -> Result<()> {
    if identity.is_empty()
        || identity.len() > 1024
        || !identity.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ChatError::bad_request(
            "Virgil tokens need an identity of printable ASCII characters.",
        ));
    }
    Ok(())
}

/// The app key from base64 PKCS#8 DER (whitespace ignored) or PEM.
pub fn parse_app_key(text: &str) -> Result<Ed25519KeyPair, MalformedKey> {
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        pem::parse(text).map_err(|_| MalformedKey)?.into_contents()
    } else {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        ANY_PADDING.decode(compact).map_err(|_| MalformedKey)?
    };
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| MalformedKey)
}

/// A new app key in Virgil's form (base64 PKCS#8 v1), for local mode's development key.
pub fn generate_app_key() -> Result<SecretString> {
    let mut der = PKCS8_V1_PREFIX.to_vec();
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed)
        .map_err(|_| ChatError::internal("No randomness for a Virgil key."))?;
    der.extend_from_slice(&seed);
    Ok(SecretString::from(STANDARD.encode(der)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};

    /// Made by npm `virgil-crypto` 5.1.2's `generateKeys` and `exportPrivateKey`.
    const KEY: &str = "MC4CAQAwBQYDK2VwBCIEIOiER8JtE3ulAbqlKQ27uZmV18/h3Ko7jjIoR4XcuAUD";
    /// `JwtGenerator` of npm `virgil-sdk` 6.2.0 with that key, app id `app123`, key id
    /// `kid456`, identity `alex`, its clock frozen at 1700000000 s.
    const FROM_VIRGIL_SDK: &str = "eyJhbGciOiJWRURTNTEyIiwia2lkIjoia2lkNDU2IiwidHlwIjoiSldUIiwiY3R5IjoidmlyZ2lsLWp3dDt2PTEifQ.eyJpc3MiOiJ2aXJnaWwtYXBwMTIzIiwic3ViIjoiaWRlbnRpdHktYWxleCIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAxMjAwfQ.MFEwDQYJYIZIAWUDBAIDBQAEQLZn04K9jfWJSChHpt8GY7OXSBZktl0AnLXwNce7tGASwvJ0U4t8sSGQKIc-s1L6y4h3_h7CDvYA6R15YlJpbQc";

    fn signer(key: &str) -> VirgilSigner {
        VirgilSigner::new(
            "app123",
            "kid456",
            &SecretString::from(key.to_owned()),
            DEFAULT_TTL_SECS,
        )
        .unwrap()
    }

    #[test]
    fn the_token_is_byte_for_byte_the_virgil_sdks() {
        assert_eq!(
            signer(KEY).mint("alex", 1_700_000_000).unwrap(),
            FROM_VIRGIL_SDK
        );
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{KEY}\n-----END PRIVATE KEY-----\n");
        assert_eq!(
            signer(&pem).mint("alex", 1_700_000_000).unwrap(),
            FROM_VIRGIL_SDK
        );
    }

    #[test]
    fn the_signature_is_ed25519_over_the_sha512_digest_in_83_bytes_of_der() {
        let signer = signer(KEY);
        let token = signer.mint("sam", 1_700_000_123).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let der = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(der.len(), 83);
        assert_eq!(der[..19], SIGNATURE_DER_PREFIX);
        let spki = STANDARD.decode(signer.public_key_base64()).unwrap();
        let public = UnparsedPublicKey::new(&ED25519, &spki[12..]);
        let digest = digest(&SHA512, input.as_bytes());
        assert!(public.verify(digest.as_ref(), &der[19..]).is_ok());
        assert!(
            public.verify(input.as_bytes(), &der[19..]).is_err(),
            "not over the input"
        );
    }

    #[test]
    fn identities_other_than_printable_ascii_are_bad_requests() {
        let signer = signer(KEY);
        for bad in ["zoë", "a\nb", "", "名前"] {
            let err = signer.mint(bad, 1).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRequest, "{bad:?}");
        }
        assert!(signer.mint("user@example.org", 1).is_ok());
    }

    #[test]
    fn a_malformed_key_is_refused_and_never_shown() {
        for bad in [
            "",
            "not base64!",
            "MCowBQYDK2VwAyEA4MMbbEMZYMI0W0B1JGkpyIus5Zihm5Q2w0RgFZl6VqM=",
        ] {
            let err =
                VirgilSigner::new("a", "k", &SecretString::from(bad.to_owned()), 60).unwrap_err();
            assert!(!err.to_string().contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn a_generated_key_is_in_virgils_form_and_signs() {
        let key = generate_app_key().unwrap();
        assert!(key.expose_secret().starts_with("MC4CAQAwBQYDK2VwBCIEI"));
        let signer = signer(key.expose_secret());
        assert!(signer.public_key_base64().starts_with("MCowBQYDK2VwAyEA"));
        assert!(signer.mint("alex", 1).is_ok());
    }
}
