//! The service's post-event webhook (`Configuration/Webhooks`): when `PostWebhookUrl` is set,
//! `Method` is POST and `Filters` name `onMessageAdded`, an added message is posted there as
//! Twilio posts it (form fields, `X-Twilio-Signature` with the account's auth token), in the
//! background, with Twilio's 5-second timeout, no redirects and no retry.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;

use crate::state::{MessageRec, ServiceState};
use crate::{ACCOUNT_SID, CHAT_SERVICE_SID, Emulator};

/// Who added a message, as the webhook's `Source` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The REST API, with `X-Twilio-Webhook-Enabled: true`.
    Api,
    /// A chat client (local mode's browser API stands for Twilio's SDK).
    Sdk,
}

/// One webhook to send.
pub(crate) struct Hook {
    http: reqwest::Client,
    url: String,
    signature: String,
    form: Vec<(&'static str, String)>,
}

impl Hook {
    /// Posts it in a task of its own: the caller's answer does not wait for it.
    pub(crate) fn send(self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.form)
                .finish();
            let _ = self
                .http
                .post(&self.url)
                .header("X-Twilio-Signature", self.signature)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
        });
    }
}

impl Emulator {
    /// The account's auth token, which signs webhooks; without it none are sent.
    pub fn with_auth_token(mut self, auth_token: &str) -> Self {
        self.auth_token = Some(auth_token.to_owned());
        self
    }

    pub(crate) fn message_added_hook(
        &self,
        state: &ServiceState,
        conversation_sid: &str,
        m: &MessageRec,
        source: Option<Source>,
    ) -> Option<Hook> {
        let source = source?;
        let auth_token = self.auth_token.as_deref()?;
        let url = state.post_webhook_url.clone()?;
        let wanted = state.webhook_method == "POST"
            && state.webhook_filters.iter().any(|f| f == "onMessageAdded");
        if !wanted {
            return None;
        }
        let mut form: Vec<(&'static str, String)> = vec![
            ("AccountSid", ACCOUNT_SID.into()),
            ("Attributes", m.attributes.clone()),
            ("Author", m.author.clone()),
            ("Body", m.body.clone()),
            ("ChatServiceSid", CHAT_SERVICE_SID.into()),
            ("ConversationSid", conversation_sid.to_owned()),
            ("DateCreated", m.date_created.clone()),
            ("EventType", "onMessageAdded".into()),
            ("Index", m.index.to_string()),
            ("MessageSid", m.sid.clone()),
            ("RetryCount", "0".into()),
        ];
        form.extend(m.participant_sid.clone().map(|p| ("ParticipantSid", p)));
        match source {
            Source::Api => form.push(("Source", "API".into())),
            Source::Sdk => {
                form.push(("Source", "SDK".into()));
                form.push(("ClientIdentity", m.author.clone()));
            }
        }
        Some(Hook {
            http: self.webhook_http.clone(),
            signature: sign_form(auth_token, &url, &form),
            url,
            form,
        })
    }
}

/// The client webhooks go out with: Twilio's 5-second timeout, no redirects.
pub(crate) fn webhook_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// `X-Twilio-Signature` of a form POST to `url` (`shared/twilio/twilio.md` section 3):
/// HMAC-SHA1 with the auth token over the URL and the parameters sorted, each name then its
/// value, base64.
pub fn sign_form<K: AsRef<str> + Ord, V: AsRef<str> + Ord>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let sorted: BTreeSet<&(K, V)> = params.iter().collect();
    let message = sorted.into_iter().fold(url.to_owned(), |m, (name, value)| {
        m + name.as_ref() + value.as_ref()
    });
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, message.as_bytes()))
}
