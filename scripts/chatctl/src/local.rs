//! Embedded defaults for local mode: a development issuer (its ES256 key kept in the data
//! directory) and clearly fake Twilio credentials, so the product runs with no account.

use std::path::Path;

use context_chat::context_token::now_unix;
use context_chat::dev_keys::{self, ContextClaims, ContextTokenSigner, JwksShape};
use context_chat::settings::{ChatSettings, Settings, TwilioSettings};
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

/// The development issuer: its key, and the JWKS `chatctl serve` publishes for it.
pub struct LocalIssuer {
    pub jwks: Value,
    signer: ContextTokenSigner,
}

const PRIVATE_FILE: &str = "dev-issuer-private.pem";
const KID_FILE: &str = "dev-issuer.kid";

impl LocalIssuer {
    /// Loads the key from `data_dir`, making it on first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let private_path = data_dir.join(PRIVATE_FILE);
        let kid_path = data_dir.join(KID_FILE);
        let (private_pem, kid) = match (
            std::fs::read_to_string(&private_path),
            std::fs::read_to_string(&kid_path),
        ) {
            (Ok(pem), Ok(kid)) => (pem, kid.trim().to_owned()),
            _ => {
                let key = dev_keys::generate_es256().map_err(|e| e.message)?;
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| format!("{}: {e}", data_dir.display()))?;
                crate::dev::write_private(&private_path, &key.private_pem)?;
                std::fs::write(&kid_path, &key.kid)
                    .map_err(|e| format!("{}: {e}", kid_path.display()))?;
                tracing::info!(path = %private_path.display(), "made a development signing key");
                (key.private_pem, key.kid)
            }
        };
        let public_pem = dev_keys::public_pem_of(&private_pem).map_err(|e| {
            format!(
                "{}: {} (delete it to make a new one)",
                private_path.display(),
                e.message
            )
        })?;
        Ok(Self {
            jwks: dev_keys::jwks_json(&public_pem, &kid, JwksShape::Rfc7517)
                .map_err(|e| e.message)?,
            signer: ContextTokenSigner::from_pem(&private_pem, &kid).map_err(|e| e.message)?,
        })
    }

    pub fn sign(&self, identity: &str, contexts: &[&str], ttl_secs: u64) -> Result<String, String> {
        let now = now_unix();
        self.signer
            .sign(&ContextClaims {
                sub: identity.into(),
                contexts: contexts.iter().map(|c| c.to_string()).collect(),
                iat: now,
                exp: now + ttl_secs,
                iss: None,
                aud: None,
            })
            .map_err(|e| e.message)
    }
}

/// Settings that need no account: fake Twilio credentials (all zeros) and the local issuer.
pub fn embedded_settings(jwks_url: Url) -> Settings {
    Settings {
        twilio: TwilioSettings {
            account_sid: format!("AC{}", "0".repeat(32)),
            api_key_sid: format!("SK{}", "0".repeat(32)),
            api_secret: SecretString::from("local-development-only-not-a-twilio-secret"),
            chat_service_sid: format!("IS{}", "0".repeat(32)),
            auth_token: Some(SecretString::from(
                "local-development-only-not-a-twilio-token",
            )),
            access_token_ttl_secs: context_chat::twilio::access_token::DEFAULT_TTL_SECS,
            // No account, so nothing to provision in.
            api_base_url: None,
        },
        chat: ChatSettings {
            jwks_url,
            issuer: None,
            audience: None,
        },
        sendgrid: Ok(None),
    }
}
