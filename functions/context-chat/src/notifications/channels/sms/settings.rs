//! The SMS channel's settings section (Twilio Verify for codes, the Messaging Service for
//! texts, with the account's API key) and the gateway made from it once per load: Twilio's
//! when the section names both services and the process texts (it lends a [`Maker`]),
//! else the process's [`Fallback`] (local mode's embedded Verify and outbox). A mistake here
//! fails only the text messages.

use std::sync::Arc;

use secrecy::SecretString;
use url::Url;

use crate::error::Result;
use crate::feature::Feature;
use crate::settings::{Param, Reader, Section, Settings};
use crate::settings_holder::Configured;
use crate::sms_gateway::SmsGateway;
use crate::twilio::rest::RetryPolicy;

/// Twilio Verify (phone codes) and the Messaging Service (notifications by text).
#[derive(Debug, Clone)]
pub struct SmsSettings {
    pub account_sid: String,
    pub api_key_sid: String,
    pub api_secret: SecretString,
    pub verify_service_sid: String,
    pub messaging_service_sid: String,
    pub verify_api_base_url: Url,
    pub messaging_api_base_url: Url,
}

/// Where Twilio Verify answers, unless `TWILIO_VERIFY_API_BASE_URL` says otherwise.
pub const DEFAULT_VERIFY_API_BASE_URL: &str = "https://verify.twilio.com";
/// Where the Messages resource answers, unless `TWILIO_MESSAGING_API_BASE_URL` says otherwise.
pub const DEFAULT_MESSAGING_API_BASE_URL: &str = "https://api.twilio.com";

/// Makes Twilio's SMS gateway from its settings (`TwilioSms::gateway`).
pub type MakeGateway = fn(reqwest::Client, &SmsSettings, RetryPolicy) -> Arc<dyn SmsGateway>;

/// Lent by the processes that text, so that only their binaries link Twilio's SMS client.
pub struct Maker(pub MakeGateway);

/// Where codes and texts go when Twilio's services are not set up (lent by local mode).
pub struct Fallback(pub Arc<dyn SmsGateway>);

impl SmsSettings {
    /// Both services, or neither (off); with them, the account and its API key.
    pub fn of(settings: &Settings) -> Feature<Self> {
        let missing = [Param::VerifyServiceSid, Param::MessagingServiceSid];
        settings.feature(Section::Sms, Self::read, &missing)
    }

    fn read(r: &Reader<'_>) -> Result<Option<Self>> {
        let verify = r.optional(Param::VerifyServiceSid);
        let messaging = r.optional(Param::MessagingServiceSid);
        if verify.is_none() && messaging.is_none() {
            return Ok(None);
        }
        Ok(Some(SmsSettings {
            account_sid: r.sid(Param::AccountSid, "AC")?,
            api_key_sid: r.sid(Param::ApiKey, "SK")?,
            api_secret: SecretString::from(r.required(Param::ApiSecret)?.to_owned()),
            verify_service_sid: r.sid(Param::VerifyServiceSid, "VA")?,
            messaging_service_sid: r.sid(Param::MessagingServiceSid, "MG")?,
            verify_api_base_url: r.url_or(Param::VerifyApiBaseUrl, DEFAULT_VERIFY_API_BASE_URL)?,
            messaging_api_base_url: r
                .url_or(Param::MessagingApiBaseUrl, DEFAULT_MESSAGING_API_BASE_URL)?,
        }))
    }
}

#[derive(Clone)]
struct GatewayPart(Feature<Arc<dyn SmsGateway>>);

/// The SMS gateway of these settings, made at its first use in the load.
pub fn gateway(configured: &Configured) -> Result<Arc<dyn SmsGateway>> {
    gateway_part(configured).0.get("SMS").cloned()
}

/// Why text messages are not on, for banners (`None`: they are).
pub fn why_not(configured: &Configured) -> Option<String> {
    gateway_part(configured).0.why_not().map(str::to_owned)
}

fn gateway_part(configured: &Configured) -> GatewayPart {
    configured.part(|c| {
        let lent = c.lent();
        GatewayPart(match (SmsSettings::of(&c.settings), lent.get::<Maker>()) {
            (Feature::On(sms), Some(Maker(make))) => {
                Feature::On(make(lent.api_http.clone(), &sms, lent.twilio_retry))
            }
            (Feature::On(_), None) => Feature::Off("this process sends no text messages".into()),
            (Feature::Off(why), _) => match lent.get::<Fallback>() {
                Some(Fallback(sms)) => Feature::On(sms.clone()),
                None => Feature::Off(why),
            },
            (Feature::Misconfigured(err), _) => Feature::Misconfigured(err),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Reads, for_tests, reads};

    const ACCOUNT: (Param, &str) = (Param::AccountSid, "AC0123456789abcdef0123456789abcdef");
    const KEY: (Param, &str) = (Param::ApiKey, "SKfedcba9876543210fedcba9876543210");
    const SECRET: (Param, &str) = (Param::ApiSecret, "s3cr3t-value");
    const VERIFY: (Param, &str) = (
        Param::VerifyServiceSid,
        "VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    );
    const MESSAGING: (Param, &str) = (
        Param::MessagingServiceSid,
        "MGbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    );

    fn sms(pairs: &[(Param, &str)]) -> Result<Option<SmsSettings>> {
        let mut all = vec![ACCOUNT, KEY, SECRET];
        all.extend_from_slice(pairs);
        SmsSettings::of(&for_tests(&all, Reads(&[Section::Sms])).unwrap()).into_section()
    }

    #[test]
    fn both_services_or_none_and_a_mistake_names_the_setting() {
        assert!(matches!(sms(&[]), Ok(None)));
        let err = sms(&[VERIFY]).unwrap_err();
        assert!(
            err.message.contains("twilio/messagingServiceSID"),
            "{}",
            err.message
        );
        let err = sms(&[VERIFY, (Param::MessagingServiceSid, VERIFY.1)]).unwrap_err();
        assert!(
            err.message.contains("MG followed by 32 hex digits"),
            "{}",
            err.message
        );
        let on = sms(&[VERIFY, MESSAGING]).unwrap().unwrap();
        assert_eq!(
            on.verify_api_base_url.as_str(),
            "https://verify.twilio.com/"
        );
        assert_eq!(
            on.messaging_api_base_url.as_str(),
            "https://api.twilio.com/"
        );
        assert_eq!(on.account_sid, ACCOUNT.1);
        let base = |url| sms(&[VERIFY, MESSAGING, (Param::VerifyApiBaseUrl, url)]);
        assert!(
            base("http://verify.example").is_err(),
            "https only, but for loopback"
        );
        assert!(base("http://127.0.0.1:9").is_ok());
        // A process that sends no text messages does not read them; those that do get the
        // account's API key with them.
        let token = for_tests(&[VERIFY, MESSAGING], Reads(&[Section::Ledger])).unwrap();
        assert!(matches!(SmsSettings::of(&token), Feature::Off(_)));
        let params: Vec<Param> = reads::VERIFY_EMAIL.params().collect();
        for p in [ACCOUNT.0, KEY.0, SECRET.0, VERIFY.0] {
            assert!(params.contains(&p), "{p:?}");
        }
        assert!(!params.contains(&Param::ChatServiceSid));
    }
}
