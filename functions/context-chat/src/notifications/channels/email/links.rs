//! The keys the link secret makes: unsubscribe links and the stored hashes of confirmation
//! codes, made from the settings where they are used (an HMAC key is made in well under a
//! microsecond, beside a store round trip).

use secrecy::SecretString;

use crate::error::Result;
use crate::notifications::address::EmailAddress;
use crate::notifications::codes::CodeKey;
use crate::notifications::unsubscribe::UnsubscribeSigner;
use crate::settings_holder::Configured;

/// What the link secret keys: unsubscribe links and the stored hashes of confirmation
/// codes. Links signed with the auth token, as they were before the link secret, still
/// check where the auth token is read (the webhook).
pub struct LinkKeys {
    pub unsubscribe: UnsubscribeSigner,
    legacy_unsubscribe: Option<UnsubscribeSigner>,
    pub codes: CodeKey,
}

impl LinkKeys {
    pub fn check_unsubscribe(&self, context: &str, email: &EmailAddress, signature: &str) -> bool {
        self.unsubscribe.check(context, email, signature)
            || self
                .legacy_unsubscribe
                .as_ref()
                .is_some_and(|legacy| legacy.check(context, email, signature))
    }
}

impl LinkKeys {
    pub fn new(link_secret: &SecretString, auth_token: Option<&SecretString>) -> Self {
        Self {
            unsubscribe: UnsubscribeSigner::new(link_secret),
            legacy_unsubscribe: auth_token.map(UnsubscribeSigner::new),
            codes: CodeKey::new(link_secret),
        }
    }

    /// The keys of the current settings; without a link secret, "not configured".
    pub fn of(configured: &Configured) -> Result<Self> {
        Ok(Self::new(
            configured.link_secret()?,
            configured.settings.webhook_auth_token.as_ref(),
        ))
    }
}
