//! The application: built once per process, it holds the settings and everything made
//! from them (verifier with its caches, access-token minter), and answers the operations.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::context_token::{JwksCache, JwksPolicy, VerifiedToken, Verifier, jwks, now_unix};
use crate::error::{ChatError, Result};
use crate::notifications::mailer::{Mailer, SendGrid};
use crate::notifications::notifier::NotifyOptions;
use crate::notifications::operations::NotificationPorts;
use crate::notifications::unsubscribe::UnsubscribeSigner;
use crate::settings::TwilioSettings;
use crate::settings::{Settings, SettingsSource};
use crate::twilio::access_token::{AccessTokenMinter, Grant};
use crate::twilio::conversations::ConversationsApi;
use crate::twilio::provisioning::{Provisioned, Provisioner, ProvisioningOptions};
use crate::twilio::rest::{RestClient, RetryPolicy};
use crate::twilio::webhook_signature::SignatureChecker;

#[derive(Debug, Clone, Copy)]
pub struct AppOptions {
    /// How long loaded settings are used before they are read again.
    pub settings_max_age: Duration,
    /// After a failed reload, how long the previous settings are kept before trying again.
    pub settings_retry: Duration,
    pub jwks: JwksPolicy,
    pub twilio: RetryPolicy,
    pub provisioning: ProvisioningOptions,
    pub notify: NotifyOptions,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            settings_max_age: Duration::from_secs(300),
            settings_retry: Duration::from_secs(30),
            jwks: JwksPolicy::default(),
            twilio: RetryPolicy::default(),
            provisioning: ProvisioningOptions::default(),
            notify: NotifyOptions::default(),
        }
    }
}

/// Everything made from one load of the settings.
#[derive(Clone)]
pub struct Runtime {
    pub settings: Arc<Settings>,
    pub verifier: Arc<Verifier>,
    pub minter: Arc<AccessTokenMinter>,
    /// `None` when the settings have no Conversations API (local mode on fake credentials).
    pub provisioner: Option<Arc<Provisioner>>,
    /// SendGrid, when its settings are there.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// Checks Twilio's webhook signatures, when the auth token is there.
    pub webhook_checker: Option<Arc<SignatureChecker>>,
    /// Signs and checks unsubscribe links, when the auth token is there.
    pub unsubscribe_signer: Option<Arc<UnsubscribeSigner>>,
    reload_at: Instant,
}

/// The answer to `verifyToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub identity: String,
    pub contexts: Vec<String>,
}

pub struct App {
    source: SettingsSource,
    options: AppOptions,
    http: reqwest::Client,
    twilio_http: reqwest::Client,
    current: RwLock<Option<Runtime>>,
    reload: tokio::sync::Mutex<()>,
    pub(crate) notifications: Option<NotificationPorts>,
    pub(crate) notify_options: NotifyOptions,
    /// Conversation SID → its context (unique name), or `None` for one that has none.
    pub(crate) channel_names: quick_cache::sync::Cache<String, Option<String>>,
}

/// Longest `deviceId` accepted; it becomes part of the token's endpoint id.
const MAX_DEVICE_ID_CHARS: usize = 128;

impl App {
    pub fn new(source: SettingsSource, options: AppOptions) -> Self {
        Self {
            source,
            options,
            http: jwks::http_client(),
            twilio_http: RestClient::http_client(),
            current: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
            notifications: None,
            notify_options: options.notify,
            channel_names: quick_cache::sync::Cache::new(10_000),
        }
    }

    /// Adds what the notification operations need: the store, the queue to the notifier
    /// and, for local mode, a mailer used when SendGrid is not set up.
    pub fn with_notifications(mut self, ports: NotificationPorts) -> Self {
        self.notifications = Some(ports);
        self
    }

    /// Settings from SSM under `STACK_NAME` when it is set (the AWS SDK's standard chain,
    /// so `AWS_ENDPOINT_URL` can point it elsewhere), reading `paths` below it; otherwise
    /// from environment variables.
    pub async fn settings_source_from_env(paths: &'static [&'static str]) -> SettingsSource {
        match std::env::var("STACK_NAME") {
            Ok(stack) if !stack.trim().is_empty() => {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await;
                SettingsSource::Ssm {
                    client: aws_sdk_ssm::Client::new(&config),
                    stack: stack.trim().to_owned(),
                    paths,
                }
            }
            _ => SettingsSource::from_process_env(),
        }
    }

    pub fn settings_source(&self) -> &SettingsSource {
        &self.source
    }

    /// The current runtime, reloading settings when they are older than their maximum age.
    /// A failed reload keeps the previous settings (and logs); a failed first load is an error.
    pub async fn runtime(&self) -> Result<Runtime> {
        if let Some(runtime) = self.fresh_runtime() {
            return Ok(runtime);
        }
        let _one_reload = self.reload.lock().await;
        if let Some(runtime) = self.fresh_runtime() {
            return Ok(runtime);
        }
        let previous = self.current.read().ok().and_then(|c| c.clone());
        let runtime = match (self.source.load().await, previous) {
            (Ok(settings), previous) => self.build(settings, previous.as_ref()),
            (Err(err), Some(previous)) => {
                tracing::error!(error = %err, "reloading settings failed; keeping the previous ones");
                Runtime {
                    reload_at: Instant::now() + self.options.settings_retry,
                    ..previous
                }
            }
            (Err(err), None) => {
                tracing::error!(error = %err, "loading settings failed");
                return Err(err);
            }
        };
        if let Ok(mut slot) = self.current.write() {
            *slot = Some(runtime.clone());
        }
        Ok(runtime)
    }

    fn fresh_runtime(&self) -> Option<Runtime> {
        let current = self.current.read().ok()?;
        current
            .as_ref()
            .filter(|r| Instant::now() < r.reload_at)
            .cloned()
    }

    /// Keeps the previous verifier, and so its key and token caches, when the settings it
    /// depends on did not change.
    fn build(&self, settings: Settings, previous: Option<&Runtime>) -> Runtime {
        let verifier = match previous {
            Some(prev) if prev.settings.chat == settings.chat => prev.verifier.clone(),
            _ => Arc::new(Verifier::new(
                JwksCache::new(
                    settings.chat.jwks_url.clone(),
                    self.http.clone(),
                    self.options.jwks,
                ),
                settings.chat.issuer.clone(),
                settings.chat.audience.clone(),
            )),
        };
        let twilio = &settings.twilio;
        let minter = Arc::new(AccessTokenMinter::new(
            &twilio.account_sid,
            &twilio.api_key_sid,
            &twilio.api_secret,
            &twilio.chat_service_sid,
            twilio.access_token_ttl_secs,
        ));
        let provisioner = match previous {
            Some(prev) if prev.settings.twilio.same_api(twilio) => prev.provisioner.clone(),
            _ => self.provisioner(twilio),
        };
        let mailer = settings
            .sendgrid
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|sendgrid| {
                Arc::new(SendGrid::new(
                    self.twilio_http.clone(),
                    &sendgrid.api_base_url,
                    sendgrid.api_key.clone(),
                    &sendgrid.domain,
                )) as Arc<dyn Mailer>
            });
        let webhook_checker = twilio
            .auth_token
            .as_ref()
            .map(|token| Arc::new(SignatureChecker::new(token)));
        let unsubscribe_signer = twilio
            .auth_token
            .as_ref()
            .map(|token| Arc::new(UnsubscribeSigner::new(token)));
        Runtime {
            settings: Arc::new(settings),
            verifier,
            minter,
            provisioner,
            mailer,
            webhook_checker,
            unsubscribe_signer,
            reload_at: Instant::now() + self.options.settings_max_age,
        }
    }

    fn provisioner(&self, twilio: &TwilioSettings) -> Option<Arc<Provisioner>> {
        let base_url = twilio.api_base_url.as_ref()?;
        let rest = RestClient::new(
            self.twilio_http.clone(),
            base_url,
            &twilio.chat_service_sid,
            &twilio.api_key_sid,
            &twilio.api_secret,
            self.options.twilio,
        );
        Some(Arc::new(Provisioner::new(
            ConversationsApi::new(rest),
            self.options.provisioning,
        )))
    }

    /// Verifies a context token, logging a refusal (its reason, never the token).
    async fn verified(&self, runtime: &Runtime, token: &str) -> Result<Arc<VerifiedToken>> {
        runtime.verifier.verify(token).await.inspect_err(|err| {
            tracing::info!(error_type = %err.kind, reason = %err.message, "context token refused");
        })
    }

    /// Loads the settings and fetches the issuer's keys now, so that the first request does
    /// not wait for them (a Lambda's init phase).
    pub async fn warm_up(&self) -> Result<()> {
        self.runtime().await?.verifier.prefetch_keys().await
    }

    /// `verifyToken`: who the token names and which contexts it carries.
    pub async fn verify_token(&self, token: &str) -> Result<TokenInfo> {
        let token = required(token, "token")?;
        let runtime = self.runtime().await?;
        let verified = self.verified(&runtime, token).await?;
        Ok(TokenInfo {
            identity: verified.identity.clone(),
            contexts: verified.contexts.clone(),
        })
    }

    /// `createChatToken`: a Twilio access token for the token's identity, handed out once
    /// the identity's Conversations memberships match the token's contexts.
    pub async fn create_chat_token(&self, device_id: &str, token: &str) -> Result<String> {
        let token = required(token, "token")?;
        let device_id = required(device_id, "deviceId")?;
        if device_id.chars().count() > MAX_DEVICE_ID_CHARS
            || device_id
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ChatError::bad_request(format!(
                "deviceId must be at most {MAX_DEVICE_ID_CHARS} characters, without spaces or control characters."
            )));
        }
        let runtime = self.runtime().await?;
        let verified = self.verified(&runtime, token).await?;
        let provisioned = match &runtime.provisioner {
            Some(provisioner) => match provisioner
                .ensure(&verified.identity, &verified.contexts)
                .await?
            {
                Provisioned::Remembered => "remembered",
                Provisioned::Checked(changes) => {
                    tracing::info!(
                        identity = %verified.identity,
                        user_created = changes.user_created,
                        conversations_created = changes.conversations_created,
                        conversations_adopted = changes.conversations_adopted,
                        joined = changes.joined,
                        left = changes.left,
                        "conversations provisioned"
                    );
                    "checked"
                }
            },
            None => "off",
        };
        // The old integration's endpoint id, kept so tokens look as they did.
        let endpoint_id = format!("dachat:{}:{device_id}", verified.identity);
        let access_token = runtime.minter.mint(
            Grant {
                identity: &verified.identity,
                endpoint_id: Some(&endpoint_id),
            },
            now_unix(),
        );
        tracing::info!(
            identity = %verified.identity,
            contexts = verified.contexts.len(),
            provisioning = provisioned,
            "chat token issued"
        );
        Ok(access_token)
    }
}

fn required<'a>(value: &'a str, name: &str) -> Result<&'a str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Err(ChatError::bad_request(format!("{name} is required.")))
    } else {
        Ok(trimmed)
    }
}
