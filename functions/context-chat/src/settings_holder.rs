//! The settings holder: loads the settings, reloads them when they are due, keeps the
//! previous ones when a reload fails, and builds once per load what is made from them. The
//! feature services ask it for [`Configured`] on every call, so a change in SSM reaches them
//! without a restart, and nothing made from the settings is built per request.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::context_token::{JwksCache, JwksPolicy, Verifier, jwks};
use crate::error::{ChatError, Result};
use crate::notifications::mailer::{Mailer, SendGrid};
use crate::notifications::unsubscribe::UnsubscribeSigner;
use crate::settings::{Param, Settings, SettingsSource, TwilioSettings};
use crate::twilio::access_token::AccessTokenMinter;
use crate::twilio::conversations::ConversationsApi;
use crate::twilio::provisioning::{Provisioner, ProvisioningOptions};
use crate::twilio::rest::{RestClient, RetryPolicy};
use crate::twilio::webhook_signature::SignatureChecker;

#[derive(Debug, Clone, Copy)]
pub struct HolderOptions {
    /// How long loaded settings are used before they are read again.
    pub max_age: Duration,
    /// After a failed reload, how long the previous settings are kept before trying again.
    pub retry: Duration,
    pub jwks: JwksPolicy,
    pub twilio: RetryPolicy,
    pub provisioning: ProvisioningOptions,
}

impl Default for HolderOptions {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            retry: Duration::from_secs(30),
            jwks: JwksPolicy::default(),
            twilio: RetryPolicy::default(),
            provisioning: ProvisioningOptions::default(),
        }
    }
}

/// Everything made from one load of the settings. Each optional feature is one field.
pub struct Configured {
    pub settings: Arc<Settings>,
    pub verifier: Arc<Verifier>,
    pub minter: Arc<AccessTokenMinter>,
    /// `None` when the settings name no Conversations API (local mode on fake credentials).
    pub twilio: Option<TwilioApi>,
    /// SendGrid when it is set up, else the process's fallback (local mode's outbox); the
    /// error says what is missing or wrong, and fails only the email it concerns.
    pub email: Result<Arc<dyn Mailer>>,
    /// `None` without the account's auth token.
    pub webhook_auth: Option<Arc<WebhookAuth>>,
}

/// One Conversation Service: its REST resources, and the provisioner that works on them.
#[derive(Clone)]
pub struct TwilioApi {
    pub conversations: Arc<ConversationsApi>,
    pub provisioner: Arc<Provisioner>,
}

/// What the account's auth token authenticates: Twilio's webhook signatures, and the
/// unsubscribe links of our emails (answered where the webhook is).
pub struct WebhookAuth {
    pub signatures: SignatureChecker,
    pub unsubscribe_links: UnsubscribeSigner,
}

struct Loaded {
    configured: Arc<Configured>,
    reload_at: Instant,
}

pub struct SettingsHolder {
    source: SettingsSource,
    options: HolderOptions,
    /// For fetching issuers' keys: redirects only to the same host.
    keys_http: reqwest::Client,
    /// For APIs called with credentials (Twilio, SendGrid): no redirects.
    api_http: reqwest::Client,
    fallback_mailer: Option<Arc<dyn Mailer>>,
    current: RwLock<Option<Loaded>>,
    reload: tokio::sync::Mutex<()>,
}

impl SettingsHolder {
    pub fn new(source: SettingsSource, options: HolderOptions) -> Self {
        Self {
            source,
            options,
            keys_http: jwks::http_client(),
            api_http: RestClient::http_client(),
            fallback_mailer: None,
            current: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Where email goes when SendGrid is not set up (local mode's outbox).
    pub fn with_fallback_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.fallback_mailer = Some(mailer);
        self
    }

    pub fn source(&self) -> &SettingsSource {
        &self.source
    }

    /// The current settings and what is made from them, reloading them when they are older
    /// than their maximum age. A failed reload keeps the previous ones (and logs); a failed
    /// first load is an error.
    pub async fn current(&self) -> Result<Arc<Configured>> {
        if let Some(configured) = self.fresh() {
            return Ok(configured);
        }
        let _one_reload = self.reload.lock().await;
        if let Some(configured) = self.fresh() {
            return Ok(configured);
        }
        let previous = self.loaded().map(|(configured, _)| configured);
        let (configured, reload_in) = match (self.source.load().await, previous) {
            (Ok(settings), previous) => (
                Arc::new(self.build(settings, previous.as_deref())),
                self.options.max_age,
            ),
            (Err(err), Some(previous)) => {
                tracing::error!(error = %err, "reloading settings failed; keeping the previous ones");
                (previous, self.options.retry)
            }
            (Err(err), None) => {
                tracing::error!(error = %err, "loading settings failed");
                return Err(err);
            }
        };
        if let Ok(mut slot) = self.current.write() {
            *slot = Some(Loaded {
                configured: configured.clone(),
                reload_at: Instant::now() + reload_in,
            });
        }
        Ok(configured)
    }

    /// Loads the settings and fetches the issuer's keys now, so that the first request does
    /// not wait for them (a Lambda's init phase).
    pub async fn warm_up(&self) -> Result<()> {
        self.current().await?.verifier.prefetch_keys().await
    }

    fn loaded(&self) -> Option<(Arc<Configured>, Instant)> {
        let current = self.current.read().ok()?;
        current
            .as_ref()
            .map(|l| (l.configured.clone(), l.reload_at))
    }

    fn fresh(&self) -> Option<Arc<Configured>> {
        self.loaded()
            .filter(|(_, reload_at)| Instant::now() < *reload_at)
            .map(|(configured, _)| configured)
    }

    /// Keeps the previous verifier and Twilio clients, and so their caches, when the
    /// settings they depend on did not change.
    fn build(&self, settings: Settings, previous: Option<&Configured>) -> Configured {
        let verifier = match previous {
            Some(prev) if prev.settings.chat == settings.chat => prev.verifier.clone(),
            _ => Arc::new(Verifier::new(
                JwksCache::new(
                    settings.chat.jwks_url.clone(),
                    self.keys_http.clone(),
                    self.options.jwks,
                ),
                settings.chat.issuer.clone(),
                settings.chat.audience.clone(),
            )),
        };
        let twilio_settings = &settings.twilio;
        let minter = Arc::new(AccessTokenMinter::new(
            &twilio_settings.account_sid,
            &twilio_settings.api_key_sid,
            &twilio_settings.api_secret,
            &twilio_settings.chat_service_sid,
            twilio_settings.access_token_ttl_secs,
        ));
        let twilio = match previous {
            Some(prev) if prev.settings.twilio.same_api(twilio_settings) => prev.twilio.clone(),
            _ => self.twilio_api(twilio_settings),
        };
        let webhook_auth = twilio_settings.auth_token.as_ref().map(|token| {
            Arc::new(WebhookAuth {
                signatures: SignatureChecker::new(token),
                unsubscribe_links: UnsubscribeSigner::new(token),
            })
        });
        let email = self.email(&settings);
        Configured {
            settings: Arc::new(settings),
            verifier,
            minter,
            twilio,
            email,
            webhook_auth,
        }
    }

    fn twilio_api(&self, twilio: &TwilioSettings) -> Option<TwilioApi> {
        let base_url = twilio.api_base_url.as_ref()?;
        let conversations = Arc::new(ConversationsApi::new(RestClient::new(
            self.api_http.clone(),
            base_url,
            &twilio.chat_service_sid,
            &twilio.api_key_sid,
            &twilio.api_secret,
            self.options.twilio,
        )));
        Some(TwilioApi {
            provisioner: Arc::new(Provisioner::new(
                conversations.clone(),
                self.options.provisioning,
            )),
            conversations,
        })
    }

    fn email(&self, settings: &Settings) -> Result<Arc<dyn Mailer>> {
        match &settings.sendgrid {
            Ok(Some(sendgrid)) => Ok(Arc::new(SendGrid::new(
                self.api_http.clone(),
                &sendgrid.api_base_url,
                sendgrid.api_key.clone(),
                &sendgrid.domain,
            ))),
            Err(err) => Err(err.clone()),
            Ok(None) => self.fallback_mailer.clone().ok_or_else(|| {
                ChatError::internal(format!(
                    "Email is not set up: {} and {} are missing.",
                    self.source.describe(Param::SendGridApiKey),
                    self.source.describe(Param::SendGridDomain)
                ))
            }),
        }
    }
}
