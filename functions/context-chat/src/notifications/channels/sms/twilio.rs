//! Twilio's SMS side: Verify v2 (`POST /v2/Services/{VA…}/Verifications` and
//! `/VerificationCheck`) for codes, and the Messages resource of the 2010 API
//! (`POST /2010-04-01/Accounts/{AC…}/Messages.json`) through the deployment's Messaging
//! Service for notifications. Twilio's answers map to [`refusals`]; Twilio's own messages
//! are never passed on or logged, since they may quote the number.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::error::{ChatError, Result};
use crate::metrics::{self, Counter};
use crate::notifications::address::PhoneNumber;
use crate::notifications::sms::{Delivery, SmsGateway, refusals};
use crate::twilio::rest::{Form, RestClient, RetryPolicy, TwilioError};

/// How long one SMS call may take, retries included.
const BUDGET: Duration = Duration::from_secs(10);

pub struct TwilioSms {
    verify: RestClient,
    messages: RestClient,
    messaging_service_sid: String,
}

/// What this module needs of the settings.
pub struct TwilioSmsConfig<'a> {
    pub account_sid: &'a str,
    pub api_key_sid: &'a str,
    pub api_secret: &'a SecretString,
    pub verify_service_sid: &'a str,
    pub messaging_service_sid: &'a str,
    pub verify_base_url: &'a Url,
    pub messaging_base_url: &'a Url,
}

#[derive(Deserialize)]
struct Verification {
    status: String,
}

impl TwilioSms {
    /// The gateway of a deployment's settings (what a [`super::settings::Maker`] holds).
    pub fn gateway(
        http: reqwest::Client,
        sms: &super::settings::SmsSettings,
        policy: RetryPolicy,
    ) -> std::sync::Arc<dyn SmsGateway> {
        std::sync::Arc::new(Self::new(
            http,
            TwilioSmsConfig {
                account_sid: &sms.account_sid,
                api_key_sid: &sms.api_key_sid,
                api_secret: &sms.api_secret,
                verify_service_sid: &sms.verify_service_sid,
                messaging_service_sid: &sms.messaging_service_sid,
                verify_base_url: &sms.verify_api_base_url,
                messaging_base_url: &sms.messaging_api_base_url,
            },
            policy,
        ))
    }

    pub fn new(http: reqwest::Client, config: TwilioSmsConfig<'_>, policy: RetryPolicy) -> Self {
        Self {
            verify: RestClient::below(
                http.clone(),
                config.verify_base_url,
                &["v2", "Services", config.verify_service_sid],
                config.api_key_sid,
                config.api_secret,
                policy,
            ),
            messages: RestClient::below(
                http,
                config.messaging_base_url,
                &["2010-04-01", "Accounts", config.account_sid],
                config.api_key_sid,
                config.api_secret,
                policy,
            ),
            messaging_service_sid: config.messaging_service_sid.to_owned(),
        }
    }
}

/// Verify's answer as the person at the widget should hear it; the log gets the code only.
fn refused(err: TwilioError, doing: &str) -> ChatError {
    tracing::warn!(status = ?err.status, code = ?err.code, attempts = err.attempts, "Twilio refused {doing}");
    match (err.status, err.code) {
        (_, Some(60202)) => refusals::too_many_checks(),
        (_, Some(60203)) => refusals::too_many_sends(),
        (Some(404), _) | (_, Some(20404)) => refusals::no_pending_code(),
        (_, Some(60205)) => refusals::landline(),
        (_, Some(60410 | 60605)) => refusals::blocked(),
        (_, Some(60200 | 21211 | 21614)) => refusals::not_a_number(),
        _ => ChatError::internal(format!(
            "Twilio could not {doing} just now; try again in a moment."
        )),
    }
}

impl TwilioSms {
    /// A POST to the Verify service's `resource`, never repeated (each may text a person).
    async fn verification(&self, resource: &str, form: Form) -> Result<Verification, TwilioError> {
        let url = self.verify.url(&[resource]);
        let deadline = Instant::now() + BUDGET;
        self.verify
            .post_once_or_more(url, form, deadline, false)
            .await
    }
}

impl SmsGateway for TwilioSms {
    fn start_verification<'a>(&'a self, to: &'a PhoneNumber) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let form = Form::new().with("To", to.as_str()).with("Channel", "sms");
            self.verification("Verifications", form)
                .await
                .map(drop)
                .map_err(|e| refused(e, "send a verification code"))
        })
    }

    fn check_verification<'a>(
        &'a self,
        to: &'a PhoneNumber,
        code: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let form = Form::new().with("To", to.as_str()).with("Code", code);
            let checked = self
                .verification("VerificationCheck", form)
                .await
                .map_err(|e| refused(e, "check the code"))?;
            Ok(checked.status == "approved")
        })
    }

    fn send<'a>(&'a self, to: &'a PhoneNumber, text: &'a str) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move {
            let form = Form::new()
                .with("To", to.as_str())
                .with("MessagingServiceSid", &self.messaging_service_sid)
                .with("Body", text);
            match self
                .messages
                .post_once_or_more::<serde_json::Value>(
                    self.messages.url(&["Messages.json"]),
                    form,
                    Instant::now() + BUDGET,
                    false,
                )
                .await
            {
                Ok(_) => Ok(Delivery::Accepted),
                Err(err) if err.has_code(&[21610]) => Ok(Delivery::Unsubscribed),
                // A request Twilio refuses for good (a number it cannot send to): trying
                // again would be refused again.
                Err(TwilioError {
                    status: Some(400),
                    code: Some(code),
                    ..
                }) => {
                    metrics::count(Counter::SmsRefused);
                    tracing::warn!(code, "Twilio refused a text message for good");
                    Ok(Delivery::Refused(code))
                }
                Err(err) => {
                    tracing::warn!(status = ?err.status, code = ?err.code, attempts = err.attempts, "sending a text message failed");
                    Err(ChatError::internal(
                        "The text message could not be sent; will try again.",
                    ))
                }
            }
        })
    }
}
