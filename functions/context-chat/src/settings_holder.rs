//! The settings holder: loads the settings, reloads them in the background before they are
//! due (no request waits but a process's first), keeps the previous ones when a reload fails,
//! and builds once per load what is made from them. The
//! feature services ask it for [`Configured`] on every call, so a change in SSM reaches them
//! without a restart, and nothing made from the settings is built per request.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::context_token::platform::PlatformVerifier;
use crate::context_token::{JwksCache, JwksPolicy, Verifier, jwks};
use crate::error::{ChatError, Result};
use crate::feature::Feature;
use crate::settings::{ChatSettings, Param, Settings, SettingsSource, TwilioSettings};
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

/// Everything made from one load of the settings: each part of the product one
/// [`Feature`], on, off or misconfigured, asked for through its method, which answers a
/// part that is not on with "<part> is not configured." and logs why. A feature that reads
/// its own settings section keeps what it makes from it here too ([`Configured::part`]).
pub struct Configured {
    pub settings: Arc<Settings>,
    verifier: Feature<Arc<Verifier>>,
    minter: Feature<Arc<AccessTokenMinter>>,
    /// Off when the settings name no Conversations API (local mode on fake credentials) or
    /// the process does not read Twilio's.
    twilio: Feature<TwilioApi>,
    signatures: Feature<Arc<SignatureChecker>>,
    link_secret: Feature<SecretString>,
    platform: Feature<Arc<PlatformVerifier>>,
    /// What features made from their own sections for this load, by type.
    parts: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    lent: Arc<Lent>,
}

/// What the process lends the features that build their own parts: its client for APIs
/// called with credentials, Twilio's retry policy, and values by type (`AppBuilder::lend`:
/// local mode's outbox, the SMS gateway's maker, …).
pub struct Lent {
    pub api_http: reqwest::Client,
    pub twilio_retry: RetryPolicy,
    values: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl Lent {
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// Values lent by type, before the holder is made.
#[derive(Default)]
pub struct Lending(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Lending {
    pub fn lend<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(value));
    }

    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

impl Configured {
    pub fn verifier(&self) -> Result<&Arc<Verifier>> {
        self.verifier.get("Checking context tokens")
    }

    pub fn minter(&self) -> Result<&Arc<AccessTokenMinter>> {
        self.minter.get("Making access tokens")
    }

    pub fn signatures(&self) -> Result<&Arc<SignatureChecker>> {
        self.signatures.get("Checking webhooks")
    }

    /// The link secret, which keys unsubscribe links and the hashes of confirmation codes
    /// (`notifications::links`).
    pub fn link_secret(&self) -> Result<&SecretString> {
        self.link_secret.get("Signing links and codes")
    }

    /// Twilio's Conversations API and the provisioner.
    pub fn twilio(&self) -> Result<&TwilioApi> {
        self.twilio.get("Twilio's Conversations API")
    }

    /// The Conversations API, where it is on: provisioning is skipped without it (local
    /// mode on fake credentials).
    pub fn twilio_if_on(&self) -> Option<&TwilioApi> {
        self.twilio.on()
    }

    /// The part of type `T` made from these settings: built by `build` at its first use in
    /// this load (outside the lock; if two build at once, the first kept wins), the same
    /// after it.
    pub fn part<T: Clone + Send + Sync + 'static>(&self, build: impl FnOnce(&Self) -> T) -> T {
        let kept = |parts: &HashMap<TypeId, Box<dyn Any + Send + Sync>>| {
            parts.get(&TypeId::of::<T>())?.downcast_ref::<T>().cloned()
        };
        if let Some(part) = self.parts.lock().ok().and_then(|p| kept(&p)) {
            return part;
        }
        let built = build(self);
        let Ok(mut parts) = self.parts.lock() else {
            return built;
        };
        kept(&parts).unwrap_or_else(|| {
            parts.insert(TypeId::of::<T>(), Box::new(built.clone()));
            built
        })
    }

    /// What the process lends the features.
    pub fn lent(&self) -> &Lent {
        &self.lent
    }

    pub fn virgil(&self) -> Result<&Arc<crate::virgil::VirgilSigner>> {
        self.settings.virgil.get("Virgil")
    }

    /// The platform API's token check; not on, `AccessDenied`: no caller can be let in, and
    /// there is nothing for the caller to fix but to ask the operator.
    pub fn platform(&self) -> Result<&Arc<PlatformVerifier>> {
        self.platform
            .get("The platform API")
            .map_err(|err| ChatError {
                kind: crate::ErrorKind::AccessDenied,
                ..err
            })
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
    /// The API client (no redirects: Twilio, SendGrid) and what the process lends.
    lent: Arc<Lent>,
    current: RwLock<Option<Loaded>>,
    /// Held by the one load or reload under way.
    reload: Arc<tokio::sync::Mutex<()>>,
}

impl SettingsHolder {
    pub fn new(source: SettingsSource, options: HolderOptions, lending: Lending) -> Self {
        Self {
            source,
            options,
            keys_http: jwks::http_client(),
            lent: Arc::new(Lent {
                api_http: RestClient::http_client(),
                twilio_retry: options.twilio,
                values: lending.0,
            }),
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
        let verifier = match (&settings.chat, previous) {
            (None, _) => self.off(Param::JwksUrl),
            (Some(chat), Some(prev)) if prev.settings.chat.as_ref() == Some(chat) => {
                prev.verifier.clone()
            }
            (Some(chat), _) => Feature::On(self.verifier(chat)),
        };
        let minter = match &settings.twilio {
            None => self.off(Param::ApiSecret),
            Some(t) => Feature::On(Arc::new(
                AccessTokenMinter::new(
                    &t.account_sid,
                    &t.api_key_sid,
                    &t.api_secret,
                    &t.chat_service_sid,
                    t.access_token_ttl_secs,
                )
                .with_push_credential(t.push_credential_sid.as_deref()),
            )),
        };
        let twilio = match (&settings.twilio, previous) {
            (None, _) => self.off(Param::ApiSecret),
            (Some(t), Some(prev))
                if prev.settings.twilio.as_ref().is_some_and(|p| p.same_api(t)) =>
            {
                prev.twilio.clone()
            }
            (Some(t), _) => self.twilio_api(t),
        };
        let signatures = match &settings.webhook_auth_token {
            None => self.off(Param::WebhookAuthToken),
            Some(token) => Feature::On(Arc::new(SignatureChecker::new(token))),
        };
        let link_secret = match &settings.link_secret {
            None => self.off(Param::LinkSecret),
            Some(secret) => Feature::On(secret.clone()),
        };
        let platform = match (&settings.platform, previous) {
            (None, _) => self.off(Param::PlatformIssuer),
            (Some(p), Some(prev)) if prev.settings.platform.as_ref() == Some(p) => {
                prev.platform.clone()
            }
            (Some(p), _) => Feature::On(Arc::new(PlatformVerifier::new(
                self.jwks(&p.jwks_url),
                p.issuer.clone(),
                p.audience.clone(),
            ))),
        };
        if let Feature::Misconfigured(err) = &settings.virgil {
            tracing::error!(reason = %err.message, "Virgil settings refused: Virgil tokens fail until they are fixed");
        }
        Configured {
            settings: Arc::new(settings),
            verifier,
            minter,
            twilio,
            signatures,
            link_secret,
            platform,
            parts: Mutex::default(),
            lent: self.lent.clone(),
        }
    }

    /// A part whose setting `p` is missing.
    fn off<T>(&self, p: Param) -> Feature<T> {
        Feature::Off(format!("{} is missing", self.source.describe(p)))
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

    fn twilio_api(&self, twilio: &TwilioSettings) -> Feature<TwilioApi> {
        let Some(base_url) = twilio.api_base_url.as_ref() else {
            return Feature::Off("no Conversations API on embedded credentials".into());
        };
        let conversations = Arc::new(ConversationsApi::new(RestClient::new(
            self.lent.api_http.clone(),
            base_url,
            &twilio.chat_service_sid,
            &twilio.api_key_sid,
            &twilio.api_secret,
            self.options.twilio,
        )));
        Feature::On(TwilioApi {
            provisioner: Arc::new(Provisioner::new(
                conversations.clone(),
                self.options.provisioning,
                twilio.ownership.clone(),
            )),
            conversations,
        })
    }
}
