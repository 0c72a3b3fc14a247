//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` (unix seconds) and `webhook-signature` = `v1,` + base64 of
//! HMAC-SHA256 over `id.timestamp.body`, keyed with the bytes of the `whsec_…` secret, so
//! that a platform verifies ours with the convention's own libraries (npm and PyPI
//! `standardwebhooks`; `scripts/events-check` does).

use aws_lc_rs::hmac;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{ChatError, Result};

pub const PREFIX: &str = "whsec_";
/// The libraries' bounds on a key's bytes.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// A signing key, read from its `whsec_…` form.
pub struct SigningKey(hmac::Key);

impl SigningKey {
    /// The secret as put-params makes it (`whsec_` + base64 of 32 random bytes); the prefix
    /// may be left out, as the libraries allow. The error never shows the value.
    pub fn parse(secret: &SecretString) -> Result<Self> {
        let text = secret.expose_secret().trim();
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .filter(|b| (MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&b.len()))
            .ok_or_else(|| {
                ChatError::internal(format!(
                    "must be {PREFIX} and the base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes (put-params makes one)"
                ))
            })?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// `webhook-signature`'s value for one attempt.
    pub fn sign(&self, id: &str, timestamp: u64, body: &str) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body.as_bytes());
        let tag = context.sign();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }

    /// Whether one of the space-separated signatures of `header` is ours (for tests and
    /// `chatctl events tail`'s receiver; platforms use a library).
    pub fn verify(&self, id: &str, timestamp: u64, body: &str, header: &str) -> bool {
        let ours = self.sign(id, timestamp, body);
        header.split(' ').any(|candidate| {
            subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), ours.as_bytes()).into()
        })
    }
}

/// A new secret in the `whsec_` form: 32 random bytes.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ChatError::internal("No randomness for an events secret."))?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convention's own example (its specification's "Signature scheme" section, as its
    /// libraries' tests use it).
    #[test]
    fn signs_as_the_specifications_example_does() {
        let key = SigningKey::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ))
        .unwrap();
        let body = r#"{"test": 2432232314}"#;
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(key.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bm90IHRoaXM= {signature}")
        ));
        assert!(!key.verify("msg_other", 1614265330, body, &signature));
    }

    #[test]
    fn a_bad_secret_is_refused_without_showing_it() {
        for bad in ["", "whsec_", "whsec_c2hvcnQ=", "whsec_not base64 at all!!"] {
            let err = SigningKey::parse(&SecretString::from(bad.to_owned()))
                .err()
                .unwrap_or_else(|| panic!("{bad} was taken"));
            let encoded = bad.trim_start_matches(PREFIX);
            assert!(encoded.is_empty() || !err.message.contains(encoded));
        }
        let made = new_secret().unwrap();
        assert!(made.starts_with(PREFIX));
        SigningKey::parse(&SecretString::from(made)).unwrap();
    }
}
