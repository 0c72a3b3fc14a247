//! The email channel's settings section (SendGrid) and the mailer made from it once per
//! load: SendGrid when it is set up, else the process's [`Fallback`] (local mode's outbox).
//! A mistake here fails only email, never the token path.

use std::sync::Arc;

use secrecy::SecretString;
use url::Url;

use crate::error::Result;
use crate::feature::Feature;
use crate::mail::{DEFAULT_SENDGRID_API_BASE_URL, Mailer, SendGrid};
use crate::settings::{Param, Reader, Section, Settings};
use crate::settings_holder::Configured;

#[derive(Debug, Clone)]
pub struct SendGridSettings {
    pub api_key: SecretString,
    /// Emails come from `notifications@DOMAIN`, a domain authenticated in SendGrid.
    pub domain: String,
    pub api_base_url: Url,
}

/// Where email goes when SendGrid is not set up (lent by local mode: its outbox).
pub struct Fallback(pub Arc<dyn Mailer>);

impl SendGridSettings {
    /// Off without an API key; misconfigured with a wrong one of its settings.
    pub fn of(settings: &Settings) -> Feature<Self> {
        let missing = [Param::SendGridApiKey, Param::SendGridDomain];
        settings.feature(Section::SendGrid, Self::read, &missing)
    }

    fn read(r: &Reader<'_>) -> Result<Option<Self>> {
        let Some(api_key) = r.optional(Param::SendGridApiKey) else {
            return Ok(None);
        };
        let domain = r.required(Param::SendGridDomain)?.to_ascii_lowercase();
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(r.invalid(
                Param::SendGridDomain,
                "is not a domain name like example.org",
            ));
        }
        Ok(Some(SendGridSettings {
            api_key: SecretString::from(api_key),
            domain,
            api_base_url: r.url_or(Param::SendGridApiBaseUrl, DEFAULT_SENDGRID_API_BASE_URL)?,
        }))
    }
}

#[derive(Clone)]
struct MailerPart(Feature<Arc<dyn Mailer>>);

/// The mailer of these settings, made at its first use in the load.
pub fn mailer(configured: &Configured) -> Result<Arc<dyn Mailer>> {
    let part = configured.part(|c| {
        MailerPart(match SendGridSettings::of(&c.settings) {
            Feature::On(s) => Feature::On(Arc::new(SendGrid::new(
                c.lent().api_http.clone(),
                &s.api_base_url,
                s.api_key,
                &s.domain,
            ))),
            Feature::Off(why) => match c.lent().get::<Fallback>() {
                Some(Fallback(mailer)) => Feature::On(mailer.clone()),
                None => Feature::Off(why),
            },
            Feature::Misconfigured(err) => Feature::Misconfigured(err),
        })
    });
    part.0.get("Email").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Reads, for_tests};

    fn sendgrid(pairs: &[(Param, &str)]) -> Feature<SendGridSettings> {
        SendGridSettings::of(&for_tests(pairs, Reads(&[Section::SendGrid])).unwrap())
    }

    #[test]
    fn a_sendgrid_mistake_is_kept_for_email_and_never_shows_the_key() {
        assert!(matches!(sendgrid(&[]), Feature::Off(_)));
        let key = (Param::SendGridApiKey, "SG.secret-key");
        let err = sendgrid(&[key]).into_section().unwrap_err();
        assert!(
            err.message.contains("/stack/sendgrid/domain"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("SG.secret-key"));
        let on = sendgrid(&[key, (Param::SendGridDomain, "Chat.Example.org")])
            .for_operator()
            .unwrap();
        assert_eq!(on.domain, "chat.example.org");
        assert_eq!(on.api_base_url.as_str(), "https://api.sendgrid.com/");
        let wrong = sendgrid(&[key, (Param::SendGridDomain, "not a domain")]);
        assert!(matches!(wrong, Feature::Misconfigured(_)));
        // A process that sends no email does not read them.
        let token = for_tests(&[key], Reads(&[Section::Ledger])).unwrap();
        assert!(matches!(SendGridSettings::of(&token), Feature::Off(_)));
    }
}
