//! The settings holder: loads the settings, reloads them in the background before they are
//! due (no request waits but a process's first), keeps the previous ones when a reload fails,
//! and builds once per load what is made from them. The
//! feature services ask it for [`Configured`] on every call, so a change in SSM reaches them
//! without a restart, and nothing made from the settings is built per request.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::context_token::platform::PlatformVerifier;
use crate::context_token::{JwksCache, JwksPolicy, Verifier, jwks};
use crate::error::{ChatError, Result};
use crate::mail::{Mailer, SendGrid};
use crate::settings::{ChatSettings, Param, Settings, SettingsSource, SmsSettings, TwilioSettings};
use crate::sms_gateway::SmsGateway;
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

/// Makes Twilio's SMS gateway from its settings. Handed in by the processes that text
/// (`TwilioSms::gateway`), so that only their binaries link Twilio's SMS client.
pub type SmsMaker = fn(reqwest::Client, &SmsSettings, RetryPolicy) -> Arc<dyn SmsGateway>;

/// How this process sends email and texts beyond what the settings name.
#[derive(Default)]
pub struct Senders {
    /// Where email goes when SendGrid is not set up (local mode's outbox).
    pub fallback_mailer: Option<Arc<dyn Mailer>>,
    /// Where text messages go when Twilio's Verify and Messaging services are not set up
    /// (local mode's embedded Verify and outbox).
    pub fallback_sms: Option<Arc<dyn SmsGateway>>,
    /// How this process makes Twilio's SMS gateway; without it, text messages are "not
    /// configured" here whatever the settings say.
    pub sms_maker: Option<SmsMaker>,
}

/// Everything made from one load of the settings. Each feature is one field; one the
/// process does not read, or whose parameters are not set, answers "not configured".
pub struct Configured {
    pub settings: Arc<Settings>,
    verifier: Feature<Arc<Verifier>>,
    minter: Feature<Arc<AccessTokenMinter>>,
    /// `None` when the settings name no Conversations API (local mode on fake credentials)
    /// or the process does not read Twilio's.
    pub twilio: Option<TwilioApi>,
    /// SendGrid when it is set up, else the process's fallback (local mode's outbox); the
    /// error says what is missing or wrong, and fails only the email it concerns.
    pub email: Result<Arc<dyn Mailer>>,
    /// Twilio's Verify and Messages when they are set up, else the process's fallback
    /// (local mode's embedded Verify and outbox); else "SMS is not configured".
    pub sms: Result<Arc<dyn SmsGateway>>,
    signatures: Feature<Arc<SignatureChecker>>,
    link_secret: Feature<SecretString>,
    platform: Feature<Arc<PlatformVerifier>>,
}

/// A feature, or where its missing setting lives (for the log, never for the caller).
type Feature<T> = std::result::Result<T, String>;

/// The caller learns that something is not configured; the log learns what.
fn need<'a, T>(feature: &'a Feature<T>, what: &str) -> Result<&'a T> {
    feature.as_ref().map_err(|missing| {
        tracing::error!(missing = %missing, "{what} cannot be done: a setting is missing");
        ChatError::internal(format!(
            "{what} cannot be done: the service is not configured."
        ))
    })
}

impl Configured {
    pub fn verifier(&self) -> Result<&Arc<Verifier>> {
        need(&self.verifier, "Checking context tokens")
    }

    pub fn minter(&self) -> Result<&Arc<AccessTokenMinter>> {
        need(&self.minter, "Making access tokens")
    }

    pub fn signatures(&self) -> Result<&Arc<SignatureChecker>> {
        need(&self.signatures, "Checking webhooks")
    }

    /// The link secret, which keys unsubscribe links and the hashes of confirmation codes
    /// (`notifications::links`).
    pub fn link_secret(&self) -> Result<&SecretString> {
        need(&self.link_secret, "Signing links and codes")
    }

    /// The platform API's token check; without an issuer, `AccessDenied`: no caller can be
    /// let in, and there is nothing for the caller to fix but to ask the operator.
    pub fn platform(&self) -> Result<&Arc<PlatformVerifier>> {
        self.platform
            .as_ref()
            .map_err(|_| ChatError::access_denied("The platform API is not configured."))
    }
}

/// One Conversation Service: its REST resources, and the provisioner that works on them.
#[derive(Clone)]
pub struct TwilioApi {
    pub conversations: Arc<ConversationsApi>,
    pub provisioner: Arc<Provisioner>,
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
    senders: Senders,
    current: RwLock<Option<Loaded>>,
    /// Held by the one load or reload under way.
    reload: Arc<tokio::sync::Mutex<()>>,
}

impl SettingsHolder {
    pub fn new(source: SettingsSource, options: HolderOptions, senders: Senders) -> Self {
        Self {
            source,
            options,
            keys_http: jwks::http_client(),
            api_http: RestClient::http_client(),
            senders,
            current: RwLock::new(None),
            reload: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn source(&self) -> &SettingsSource {
        &self.source
    }

    /// The current settings and what is made from them. Only a process's first load makes
    /// its caller wait; after it, settings due for a reload (or within the last fifth of
    /// their age) are reloaded in the background while every caller goes on with the
    /// previous ones. A failed reload keeps them (and logs) and is tried again after
    /// `retry`; a failed first load is an error.
    pub async fn current(self: &Arc<Self>) -> Result<Arc<Configured>> {
        if let Some((configured, reload_at)) = self.loaded() {
            if self.refresh_due(reload_at) {
                self.reload_in_background();
            }
            return Ok(configured);
        }
        let _one_load = self.reload.lock().await;
        if let Some((configured, _)) = self.loaded() {
            return Ok(configured);
        }
        self.reload().await
    }

    /// Whether settings due at `reload_at` are to be reloaded now: in the last fifth of their
    /// age, so that fresh ones are usually in place before they are due.
    fn refresh_due(&self, reload_at: Instant) -> bool {
        let from = reload_at
            .checked_sub(self.options.max_age / 5)
            .unwrap_or(reload_at);
        Instant::now() >= from
    }

    /// One reload at a time, in a task of its own: no request waits for it.
    fn reload_in_background(self: &Arc<Self>) {
        let Ok(one_reload) = self.reload.clone().try_lock_owned() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _one_reload = one_reload;
            // Another reload may have finished between the caller's look and this lock.
            if this
                .loaded()
                .is_some_and(|(_, reload_at)| !this.refresh_due(reload_at))
            {
                return;
            }
            let _ = this.reload().await;
        });
    }

    /// Loads the settings and builds what is made from them; on failure keeps the previous
    /// ones, if any. The caller holds `reload`.
    async fn reload(&self) -> Result<Arc<Configured>> {
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
    pub async fn warm_up(self: &Arc<Self>) -> Result<()> {
        self.current().await?.verifier()?.prefetch_keys().await
    }

    /// Loads the settings and the platform's keys (the platform API's function).
    pub async fn warm_up_platform(self: &Arc<Self>) -> Result<()> {
        self.current().await?.platform()?.prefetch_keys().await
    }

    fn loaded(&self) -> Option<(Arc<Configured>, Instant)> {
        let current = self.current.read().ok()?;
        current
            .as_ref()
            .map(|l| (l.configured.clone(), l.reload_at))
    }

    /// Keeps the previous verifier and Twilio clients, and so their caches, when the
    /// settings they depend on did not change.
    fn build(&self, settings: Settings, previous: Option<&Configured>) -> Configured {
        let missing = |p: Param| self.source.describe(p);
        let verifier = match (&settings.chat, previous) {
            (None, _) => Err(missing(Param::JwksUrl)),
            (Some(chat), Some(prev)) if prev.settings.chat.as_ref() == Some(chat) => {
                prev.verifier.clone()
            }
            (Some(chat), _) => Ok(self.verifier(chat)),
        };
        let minter = settings
            .twilio
            .as_ref()
            .map(|t| {
                Arc::new(
                    AccessTokenMinter::new(
                        &t.account_sid,
                        &t.api_key_sid,
                        &t.api_secret,
                        &t.chat_service_sid,
                        t.access_token_ttl_secs,
                    )
                    .with_push_credential(t.push_credential_sid.as_deref()),
                )
            })
            .ok_or_else(|| missing(Param::ApiSecret));
        let twilio = match (&settings.twilio, previous) {
            (None, _) => None,
            (Some(t), Some(prev))
                if prev.settings.twilio.as_ref().is_some_and(|p| p.same_api(t)) =>
            {
                prev.twilio.clone()
            }
            (Some(t), _) => self.twilio_api(t),
        };
        let signatures = settings
            .webhook_auth_token
            .as_ref()
            .map(|token| Arc::new(SignatureChecker::new(token)))
            .ok_or_else(|| missing(Param::WebhookAuthToken));
        let link_secret = settings
            .link_secret
            .clone()
            .ok_or_else(|| missing(Param::LinkSecret));
        let platform = match (&settings.platform, previous) {
            (None, _) => Err(missing(Param::PlatformIssuer)),
            (Some(p), Some(prev)) if prev.settings.platform.as_ref() == Some(p) => {
                prev.platform.clone()
            }
            (Some(p), _) => Ok(Arc::new(PlatformVerifier::new(
                self.jwks(&p.jwks_url),
                p.issuer.clone(),
                p.audience.clone(),
            ))),
        };
        let email = self.email(&settings);
        let sms = self.sms(&settings);
        if let Err(err) = &settings.virgil
            && err.kind == crate::ErrorKind::InternalError
            && self.source.reads().has(crate::settings::Section::Virgil)
        {
            tracing::error!(reason = %err.message, "Virgil settings refused: Virgil tokens fail until they are fixed");
        }
        Configured {
            settings: Arc::new(settings),
            verifier,
            minter,
            twilio,
            email,
            sms,
            signatures,
            link_secret,
            platform,
        }
    }

    /// An issuer's key set, fetched by this process's client for key sets.
    fn jwks(&self, url: &url::Url) -> JwksCache {
        JwksCache::new(url.clone(), self.keys_http.clone(), self.options.jwks)
    }

    fn verifier(&self, chat: &ChatSettings) -> Arc<Verifier> {
        Arc::new(
            Verifier::new(
                self.jwks(&chat.jwks_url),
                chat.issuer.clone(),
                chat.audience.clone(),
            )
            .with_max_lifetime(chat.max_token_lifetime_secs),
        )
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
                twilio.ownership.clone(),
            )),
            conversations,
        })
    }

    fn sms(&self, settings: &Settings) -> Result<Arc<dyn SmsGateway>> {
        let not_configured = |why: String| {
            tracing::error!(reason = %why, "text messages cannot be sent");
            ChatError::internal(format!("SMS is not configured: {why}"))
        };
        match &settings.sms {
            Ok(Some(sms)) => match self.senders.sms_maker {
                Some(make) => Ok(make(self.api_http.clone(), sms, self.options.twilio)),
                None => Err(not_configured(
                    "this process sends no text messages.".into(),
                )),
            },
            Err(err) => Err(not_configured(err.message.clone())),
            Ok(None) => self.senders.fallback_sms.clone().ok_or_else(|| {
                not_configured(format!(
                    "{} and {} are missing.",
                    self.source.describe(Param::VerifyServiceSid),
                    self.source.describe(Param::MessagingServiceSid)
                ))
            }),
        }
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
            Ok(None) => self.senders.fallback_mailer.clone().ok_or_else(|| {
                ChatError::internal(format!(
                    "Email is not set up: {} and {} are missing.",
                    self.source.describe(Param::SendGridApiKey),
                    self.source.describe(Param::SendGridDomain)
                ))
            }),
        }
    }
}
