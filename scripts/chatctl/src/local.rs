//! Embedded defaults for local mode: a development issuer (its ES256 key kept in the data
//! directory) and clearly fake Twilio credentials, so the product runs with no account.

use context_chat::feature::Feature;
use std::path::Path;
use std::sync::Arc;

use context_chat::dev_keys;
use context_chat::dev_token::DevIssuer;
use context_chat::settings::{Param, PlatformSettings, Section, Settings, TwilioSettings};
use context_chat::virgil::VirgilSigner;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{CliError, Result};

const PRIVATE_FILE: &str = "dev-issuer-private.pem";
const KID_FILE: &str = "dev-issuer.kid";
const LINK_SECRET_FILE: &str = "link-secret";
const WEBHOOK_PATH_SECRET_FILE: &str = "webhook-path-secret";
const VIRGIL_KEY_FILE: &str = "dev-virgil-app-key";
const TWILIO_API_SECRET_FILE: &str = "twilio-api-secret";
const TWILIO_AUTH_TOKEN_FILE: &str = "twilio-auth-token";

/// Where `chatctl serve` serves its embedded Conversation Service in local mode.
pub const EMULATOR_PATH: &str = "/local/twilio";
/// Local mode's Virgil application: clearly not one of Virgil's (theirs are 32 hex digits).
pub const DEV_VIRGIL_APP_ID: &str = "local-development-not-a-virgil-app";
pub const DEV_VIRGIL_APP_KEY_ID: &str = "local-development-key";
/// Where the development issuer publishes its JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The data directory's secrets: owner-only, whatever wrote them (an older version, a copy).
const SECRET_FILES: &[&str] = &[
    PRIVATE_FILE,
    LINK_SECRET_FILE,
    WEBHOOK_PATH_SECRET_FILE,
    VIRGIL_KEY_FILE,
    TWILIO_API_SECRET_FILE,
    TWILIO_AUTH_TOKEN_FILE,
    crate::dev_auth::KEY_FILE,
    crate::dev_auth::CLIENT_FILE,
    EVENTS_SECRET_FILE,
];

/// Sets the data directory's secret files to 0600 again, saying which it changed.
pub fn secure_secret_files(data_dir: &Path) -> Result<()> {
    #[cfg(unix)]
    for name in SECRET_FILES {
        use std::os::unix::fs::PermissionsExt;
        let path = data_dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(CliError::file(&path))?;
            tracing::warn!(path = %path.display(), "a secret file was readable by others: set to 0600");
        }
    }
    Ok(())
}

/// The data directory's link secret (unsubscribe links, code hashes), made on first start
/// and kept, so that links and codes outlive a restart.
pub fn load_or_create_link_secret(data_dir: &Path) -> Result<SecretString> {
    load_or_create_secret(data_dir, LINK_SECRET_FILE)
}

/// The data directory's webhook path secret: the webhook answers at
/// `/twilio/webhook/<it>` and nowhere else, kept so that a tunnel's URL outlives a restart.
pub fn load_or_create_webhook_path_secret(data_dir: &Path) -> Result<SecretString> {
    load_or_create_secret(data_dir, WEBHOOK_PATH_SECRET_FILE)
}

/// Local mode's Twilio credentials, made on first start and kept: the API key secret that
/// signs access tokens and that the embedded Conversation Service accepts, and the auth
/// token that signs its webhooks.
pub struct LocalTwilio {
    pub api_secret: SecretString,
    pub auth_token: SecretString,
}

impl LocalTwilio {
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        Ok(Self {
            api_secret: load_or_create_secret(data_dir, TWILIO_API_SECRET_FILE)?,
            auth_token: load_or_create_secret(data_dir, TWILIO_AUTH_TOKEN_FILE)?,
        })
    }
}

fn load_or_create_secret(data_dir: &Path, file: &str) -> Result<SecretString> {
    let path = data_dir.join(file);
    if let Ok(secret) = std::fs::read_to_string(&path)
        && !secret.trim().is_empty()
    {
        return Ok(SecretString::from(secret.trim().to_owned()));
    }
    let secret = context_chat::settings::new_link_secret()?;
    std::fs::create_dir_all(data_dir).map_err(CliError::file(data_dir))?;
    crate::dev::write_private(&path, &secret)?;
    Ok(SecretString::from(secret))
}

/// Virgil tokens in local mode: from `VIRGIL_*` when `VIRGIL_APP_KEY` is set, else signed
/// with a development app key kept in `data_dir` (made on first start), so that
/// `createVirgilToken` can be tried with no Virgil account.
pub fn virgil_signer(data_dir: &Path) -> Result<Arc<VirgilSigner>> {
    if std::env::var(Param::VirgilAppKey.env_var()).is_ok_and(|v| !v.trim().is_empty()) {
        return Ok(context_chat::settings::virgil_signer_from_env(None).for_operator()?);
    }
    let path = data_dir.join(VIRGIL_KEY_FILE);
    let key = match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => SecretString::from(key.trim().to_owned()),
        _ => {
            let key = context_chat::virgil::generate_app_key()?;
            std::fs::create_dir_all(data_dir).map_err(CliError::file(data_dir))?;
            crate::dev::write_private(&path, key.expose_secret())?;
            key
        }
    };
    let ttl = context_chat::virgil::DEFAULT_TTL_SECS;
    VirgilSigner::new(DEV_VIRGIL_APP_ID, DEV_VIRGIL_APP_KEY_ID, &key, ttl)
        .map(Arc::new)
        .map_err(|e| {
            CliError::Failed(format!(
                "{}: {e} (delete it to make a new one)",
                path.display()
            ))
        })
}

/// The development issuer of `data_dir`, its key made on first start.
pub fn load_or_create_issuer(data_dir: &Path) -> Result<DevIssuer> {
    let private_path = data_dir.join(PRIVATE_FILE);
    let kid_path = data_dir.join(KID_FILE);
    let (private_pem, kid) = match (
        std::fs::read_to_string(&private_path),
        std::fs::read_to_string(&kid_path),
    ) {
        (Ok(pem), Ok(kid)) => (pem, kid.trim().to_owned()),
        _ => {
            let key = dev_keys::generate_es256()?;
            std::fs::create_dir_all(data_dir).map_err(CliError::file(data_dir))?;
            crate::dev::write_private(&private_path, &key.private_pem)?;
            std::fs::write(&kid_path, &key.kid).map_err(CliError::file(&kid_path))?;
            tracing::info!(path = %private_path.display(), "made a development signing key");
            (key.private_pem, key.kid)
        }
    };
    Ok(DevIssuer::from_pem(
        &private_pem,
        &kid,
        &format!("{} (delete it to make a new one)", private_path.display()),
    )?)
}

/// Settings that need no account: the embedded Conversation Service at `server_url` with
/// the local credentials, the local issuer, and the platform API behind the development
/// authorization server at `server_url`.
pub fn embedded_settings(
    server_url: &Url,
    twilio: &LocalTwilio,
    link_secret: SecretString,
    webhook_path_secret: SecretString,
    virgil: Arc<VirgilSigner>,
) -> Result<Settings> {
    let join = |path: &str| {
        server_url
            .join(path)
            .map_err(|e| CliError::Failed(format!("{path}: {e}")))
    };
    let jwks_url = join(JWKS_PATH)?;
    let platform_jwks_url = join(crate::dev_auth::JWKS_PATH)?;
    Ok(Settings {
        twilio: Some(TwilioSettings {
            account_sid: conversations_emulator::ACCOUNT_SID.to_owned(),
            api_key_sid: conversations_emulator::API_KEY_SID.to_owned(),
            api_secret: twilio.api_secret.clone(),
            chat_service_sid: conversations_emulator::CHAT_SERVICE_SID.to_owned(),
            access_token_ttl_secs: context_chat::twilio::access_token::DEFAULT_TTL_SECS,
            api_base_url: Some(join(EMULATOR_PATH.trim_start_matches('/'))?),
            ownership: context_chat::twilio::provisioning::Ownership {
                reopen_archived: std::env::var(Param::ReopenArchived.env_var())
                    .is_ok_and(|v| v.trim() == "true"),
                ..Default::default()
            },
            push_credential_sid: std::env::var(Param::PushCredentialSid.env_var())
                .ok()
                .filter(|sid| context_chat::names::looks_like_sid(sid, "CR")),
        }),
        webhook_auth_token: Some(twilio.auth_token.clone()),
        webhook_path_secret: Some(webhook_path_secret),
        link_secret: Some(link_secret),
        platform: Some(PlatformSettings {
            issuer: server_url.to_string(),
            audience: Some(crate::dev_auth::AUDIENCE.to_owned()),
            jwks_url: platform_jwks_url,
        }),
        ledger: context_chat::settings::ledger_policy_from_env()?,
        virgil: Feature::On(virgil),
        ..Settings::token_path(jwks_url, None)
    }
    // Twilio's Verify and Messaging services when TWILIO_* names them; else the embedded
    // Verify and the outbox.
    .with_env_section(Section::Sms)
    // Events to PLATFORM_EVENTS_URL when it is set, signed with PLATFORM_EVENTS_SECRET or
    // the data directory's key.
    .with_env_section(Section::Events)
    .with_env_section(Section::EventDelivery))
}

/// The events' signing key of local mode (`whsec_…`, made on first start), unless
/// PLATFORM_EVENTS_SECRET gives one: a receiver verifies with it.
pub fn load_or_create_events_secret(data_dir: &Path) -> Result<SecretString> {
    let path = data_dir.join(EVENTS_SECRET_FILE);
    if let Ok(secret) = std::fs::read_to_string(&path)
        && !secret.trim().is_empty()
    {
        return Ok(SecretString::from(secret.trim().to_owned()));
    }
    let secret = context_chat::events::signing::new_secret()?;
    std::fs::create_dir_all(data_dir).map_err(CliError::file(data_dir))?;
    crate::dev::write_private(&path, &secret)?;
    Ok(SecretString::from(secret))
}

/// Where local mode keeps the events' signing key.
pub const EVENTS_SECRET_FILE: &str = "events-secret";
