//! Settings: the Twilio credentials and the context-token issuer, read from SSM by path
//! or from environment variables, and checked once when loaded.

mod params;
mod source;

pub use params::Param;
pub use source::{ALL_PATHS, SettingsSource, TOKEN_PATHS, read_ssm_path};

use std::collections::HashMap;
use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{ChatError, Result};
use crate::names::looks_like_sid;
use crate::twilio::access_token::{DEFAULT_TTL_SECS, MAX_TTL_SECS};

#[derive(Debug, Clone)]
pub struct Settings {
    pub twilio: TwilioSettings,
    pub chat: ChatSettings,
    /// `Ok(None)` when no SendGrid API key is set. A mistake here is kept, not raised, so
    /// that it fails only the email it concerns and never the token path.
    pub sendgrid: Result<Option<SendGridSettings>, ChatError>,
}

#[derive(Debug, Clone)]
pub struct SendGridSettings {
    pub api_key: SecretString,
    /// Emails come from `notifications@DOMAIN`, a domain authenticated in SendGrid.
    pub domain: String,
    pub api_base_url: Url,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: String,
    pub api_key_sid: String,
    pub api_secret: SecretString,
    pub chat_service_sid: String,
    /// Only the webhook receiver needs it; absent is fine for the token path.
    pub auth_token: Option<SecretString>,
    pub access_token_ttl_secs: u64,
    /// The Conversations API. `None` turns provisioning off: local mode on embedded fake
    /// credentials, where there is no Twilio account to provision in.
    pub api_base_url: Option<Url>,
}

/// Everything the context-token verifier depends on. When a reload leaves it unchanged,
/// the verifier and its caches are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    pub jwks_url: Url,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Raw parameter values by [`Param`], as a source found them.
pub(crate) type RawParams = HashMap<Param, String>;

/// Where Twilio's Conversations API answers, unless `TWILIO_API_BASE_URL` says otherwise.
pub const DEFAULT_TWILIO_API_BASE_URL: &str = "https://conversations.twilio.com";

/// Reads raw values. `describe` names a parameter the way its source does (an SSM name or
/// an environment variable), for error messages; values never appear in them.
struct Reader<'a> {
    raw: &'a RawParams,
    describe: &'a dyn Fn(Param) -> String,
}

impl Reader<'_> {
    fn required(&self, p: Param) -> Result<&str> {
        self.raw
            .get(&p)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ChatError::not_found(format!("The setting {} is missing.", (self.describe)(p)))
            })
    }

    fn optional(&self, p: Param) -> Option<String> {
        self.raw
            .get(&p)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn invalid(&self, p: Param, what: &str) -> ChatError {
        ChatError::internal(format!("The setting {} {what}.", (self.describe)(p)))
    }

    fn sid(&self, p: Param, prefix: &str) -> Result<String> {
        let value = self.required(p)?;
        if looks_like_sid(value, prefix) {
            Ok(value.to_owned())
        } else {
            Err(self.invalid(
                p,
                &format!("is not a Twilio SID ({prefix} followed by 32 hex digits)"),
            ))
        }
    }

    /// https anywhere; http only to loopback.
    fn url(&self, p: Param, value: &str) -> Result<Url> {
        let url = Url::parse(value).map_err(|_| self.invalid(p, "is not a URL"))?;
        if is_allowed_remote_url(&url) {
            Ok(url)
        } else {
            Err(self.invalid(
                p,
                "must use https (plain http is allowed only for loopback hosts)",
            ))
        }
    }
}

impl Settings {
    pub(crate) fn from_raw(raw: &RawParams, describe: &dyn Fn(Param) -> String) -> Result<Self> {
        Ok(Settings {
            twilio: TwilioSettings::from_raw(raw, describe)?,
            chat: ChatSettings::from_raw(raw, describe)?,
            sendgrid: SendGridSettings::from_raw(raw, describe),
        })
    }
}

impl TwilioSettings {
    pub(crate) fn from_raw(raw: &RawParams, describe: &dyn Fn(Param) -> String) -> Result<Self> {
        let r = Reader { raw, describe };
        let ttl = match r.optional(Param::AccessTokenTtl) {
            None => DEFAULT_TTL_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|t| (1..=MAX_TTL_SECS).contains(t))
                .ok_or_else(|| {
                    r.invalid(
                        Param::AccessTokenTtl,
                        &format!("must be a number of seconds from 1 to {MAX_TTL_SECS}"),
                    )
                })?,
        };
        let api_base_url = r.url(
            Param::ApiBaseUrl,
            r.optional(Param::ApiBaseUrl)
                .as_deref()
                .unwrap_or(DEFAULT_TWILIO_API_BASE_URL),
        )?;
        Ok(TwilioSettings {
            account_sid: r.sid(Param::AccountSid, "AC")?,
            api_key_sid: r.sid(Param::ApiKey, "SK")?,
            api_secret: SecretString::from(r.required(Param::ApiSecret)?.to_owned()),
            chat_service_sid: r.sid(Param::ChatServiceSid, "IS")?,
            auth_token: r.optional(Param::AuthToken).map(SecretString::from),
            access_token_ttl_secs: ttl,
            api_base_url: Some(api_base_url),
        })
    }

    /// Whether `other` talks to the same Conversation Service with the same credentials, so
    /// that a client (and what it remembers) made for one serves the other.
    pub fn same_api(&self, other: &TwilioSettings) -> bool {
        self.api_base_url == other.api_base_url
            && self.api_key_sid == other.api_key_sid
            && self.chat_service_sid == other.chat_service_sid
            && self.api_secret.expose_secret() == other.api_secret.expose_secret()
    }
}

impl SendGridSettings {
    pub(crate) fn from_raw(
        raw: &RawParams,
        describe: &dyn Fn(Param) -> String,
    ) -> Result<Option<Self>> {
        let r = Reader { raw, describe };
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
        let api_base_url = r.url(
            Param::SendGridApiBaseUrl,
            r.optional(Param::SendGridApiBaseUrl)
                .as_deref()
                .unwrap_or(crate::notifications::mailer::DEFAULT_SENDGRID_API_BASE_URL),
        )?;
        Ok(Some(SendGridSettings {
            api_key: SecretString::from(api_key),
            domain,
            api_base_url,
        }))
    }
}

impl ChatSettings {
    pub(crate) fn from_raw(raw: &RawParams, describe: &dyn Fn(Param) -> String) -> Result<Self> {
        let r = Reader { raw, describe };
        Ok(ChatSettings {
            jwks_url: r.url(Param::JwksUrl, r.required(Param::JwksUrl)?)?,
            issuer: r.optional(Param::Issuer),
            audience: r.optional(Param::Audience),
        })
    }
}

/// HTTPS anywhere; plain HTTP only to this machine, for local mode and tests (issuer
/// keys, Twilio stand-ins).
pub fn is_allowed_remote_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn good() -> RawParams {
        [
            (Param::AccountSid, "AC0123456789abcdef0123456789abcdef"),
            (Param::ApiKey, "SKfedcba9876543210fedcba9876543210"),
            (Param::ApiSecret, "s3cr3t-value"),
            (Param::ChatServiceSid, "IS00112233445566778899aabbccddeeff"),
            (
                Param::JwksUrl,
                "https://issuer.example/.well-known/jwks.json",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    fn describe(p: Param) -> String {
        p.ssm_name("stack")
    }

    #[test]
    fn complete_parameters_load_with_defaults() {
        let s = Settings::from_raw(&good(), &describe).unwrap();
        assert_eq!(s.twilio.access_token_ttl_secs, 86_400);
        assert_eq!(s.twilio.api_secret.expose_secret(), "s3cr3t-value");
        assert_eq!(s.chat.issuer, None);
        assert!(s.twilio.auth_token.is_none());
        assert_eq!(
            s.twilio.api_base_url.unwrap().as_str(),
            "https://conversations.twilio.com/"
        );
    }

    #[test]
    fn a_missing_parameter_is_named_and_no_value_is_shown() {
        let mut raw = good();
        raw.remove(&Param::ApiSecret);
        let err = Settings::from_raw(&raw, &describe).unwrap_err();
        assert_eq!(err.kind, ErrorKind::EntityNotFound);
        assert!(
            err.message.contains("/stack/twilio/apiSecret"),
            "{}",
            err.message
        );

        let mut raw = good();
        raw.insert(Param::AccountSid, "not-a-sid-but-secret-looking".into());
        let err = Settings::from_raw(&raw, &describe).unwrap_err();
        assert!(err.message.contains("/stack/twilio/accountSID"));
        assert!(!err.message.contains("secret-looking"));
    }

    #[test]
    fn a_sendgrid_mistake_is_kept_for_email_and_does_not_stop_the_token_path() {
        let mut raw = good();
        assert!(matches!(
            Settings::from_raw(&raw, &describe).unwrap().sendgrid,
            Ok(None)
        ));
        raw.insert(Param::SendGridApiKey, "SG.secret-key".into());
        let loaded = Settings::from_raw(&raw, &describe).unwrap();
        let err = loaded.sendgrid.unwrap_err();
        assert!(
            err.message.contains("/stack/sendgrid/domain"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("SG.secret-key"));
        raw.insert(Param::SendGridDomain, "Chat.Example.org".into());
        let sendgrid = Settings::from_raw(&raw, &describe)
            .unwrap()
            .sendgrid
            .unwrap()
            .unwrap();
        assert_eq!(sendgrid.domain, "chat.example.org");
        assert_eq!(sendgrid.api_base_url.as_str(), "https://api.sendgrid.com/");
        raw.insert(Param::SendGridDomain, "not a domain".into());
        assert!(
            Settings::from_raw(&raw, &describe)
                .unwrap()
                .sendgrid
                .is_err()
        );
    }

    #[test]
    fn ttl_is_bounded_by_a_day() {
        let mut raw = good();
        raw.insert(Param::AccessTokenTtl, "3600".into());
        assert_eq!(
            Settings::from_raw(&raw, &describe)
                .unwrap()
                .twilio
                .access_token_ttl_secs,
            3600
        );
        for bad in ["0", "86401", "-5", "1h"] {
            raw.insert(Param::AccessTokenTtl, bad.into());
            assert!(Settings::from_raw(&raw, &describe).is_err(), "{bad}");
        }
    }

    #[test]
    fn twilio_base_url_must_be_https_unless_loopback() {
        for (url, ok) in [
            ("https://conversations.dublin.ie1.twilio.com", true),
            ("http://127.0.0.1:4010", true),
            ("http://conversations.twilio.com", false),
            ("conversations.twilio.com", false),
        ] {
            let mut raw = good();
            raw.insert(Param::ApiBaseUrl, url.into());
            let loaded = Settings::from_raw(&raw, &describe);
            assert_eq!(loaded.is_ok(), ok, "{url}");
            if let Err(err) = loaded {
                assert!(
                    err.message.contains("/stack/twilio/apiBaseURL"),
                    "{}",
                    err.message
                );
            }
        }
    }

    #[test]
    fn jwks_url_must_be_https_unless_loopback() {
        for (url, ok) in [
            ("https://issuer.example/jwks.json", true),
            ("http://127.0.0.1:4000/.well-known/jwks.json", true),
            ("http://localhost:4000/jwks.json", true),
            ("http://[::1]:4000/jwks.json", true),
            ("http://issuer.example/jwks.json", false),
            ("http://10.0.0.1/jwks.json", false),
            ("ftp://issuer.example/jwks.json", false),
            ("not a url", false),
        ] {
            let mut raw = good();
            raw.insert(Param::JwksUrl, url.into());
            assert_eq!(Settings::from_raw(&raw, &describe).is_ok(), ok, "{url}");
        }
    }
}
