//! The composition root: built once per process, it makes the settings holder and the
//! feature services and hands each exactly what it needs. It holds no behaviour of its own;
//! the doors (Lambda handlers, the GraphQL schema, the HTTP routes) call the services.

use std::sync::Arc;
use std::time::Duration;

use crate::access_log::AccessLog;
use crate::context_token::JwksPolicy;
use crate::error::Result;
use crate::events::delivery::{Deliverer, DeliveryPolicy};
use crate::events::{Emitter, EventJournal, EventQueue};
use crate::ledger::Ledger;
use crate::notifications::Channels;
use crate::notifications::notifier::Notifier;
use crate::notifications::service::EndsAccess;
use crate::notifications::{NotificationService, NotifyOptions, Ports, QueueMessage};
use crate::platform::PlatformService;
use crate::revocations::Revocations;
use crate::settings::SettingsSource;
use crate::settings_holder::{HolderOptions, Lending, SettingsHolder};
use crate::tokens::TokenService;
use crate::twilio::provisioning::ProvisioningOptions;
use crate::twilio::rest::RetryPolicy;

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
    /// How long a process trusts what it read of a revocation: the longest an old token
    /// keeps working in another process after `revokeIdentity`.
    pub revocation_window: Duration,
    /// How events to the platform are sent and retried.
    pub events: DeliveryPolicy,
}

impl Default for AppOptions {
    fn default() -> Self {
        let holder = HolderOptions::default();
        Self {
            settings_max_age: holder.max_age,
            settings_retry: holder.retry,
            jwks: holder.jwks,
            twilio: holder.twilio,
            provisioning: holder.provisioning,
            notify: NotifyOptions::default(),
            revocation_window: crate::revocations::REMEMBER_FOR,
            events: DeliveryPolicy::default(),
        }
    }
}

pub struct App {
    settings: Arc<SettingsHolder>,
    tokens: Arc<TokenService>,
    /// Only processes with a notification store have it.
    notifications: Option<NotificationService>,
    platform: PlatformService,
    events: Deliverer,
}

/// What a process adds to the settings: its ports (the store, which switches on the
/// ledger, revocations and notifications; the queue), and what it lends the features.
pub struct AppBuilder {
    source: SettingsSource,
    options: AppOptions,
    ports: Option<Ports>,
    /// Where events to the platform are queued (and re-queued by the deliverer).
    event_queue: Option<Arc<dyn EventQueue>>,
    lending: Lending,
}

impl AppBuilder {
    /// The process's store and queue: with them come the token ledger, revocations and
    /// notifications; without them, the token operations only.
    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = Some(ports);
        self
    }

    /// The queue of events to the platform (`events`): SQS's events queue, local mode's
    /// embedded queue.
    pub fn event_queue(mut self, queue: Arc<dyn EventQueue>) -> Self {
        self.event_queue = Some(queue);
        self
    }

    /// Lends the features `value`, found by its type: a channel's fallback (local mode's
    /// outbox), the SMS gateway's maker (only the processes that text link Twilio's SMS
    /// client), the access-ended hook.
    pub fn lend<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.lending.lend(value);
        self
    }

    pub fn build(self) -> App {
        let options = self.options;
        let holder_options = HolderOptions {
            max_age: options.settings_max_age,
            retry: options.settings_retry,
            jwks: options.jwks,
            twilio: options.twilio,
            provisioning: options.provisioning,
        };
        let ends_access = self.lending.get::<EndsAccess>().copied();
        let journal = self.lending.get::<EventJournal>().cloned();
        let settings = Arc::new(SettingsHolder::new(
            self.source,
            holder_options,
            self.lending,
        ));
        let channels = self
            .ports
            .as_ref()
            .map(|ports| Channels::new(settings.clone(), ports));
        // Where there is a store, subscriptions end with the access they followed, in the
        // processes that take access away (they lend the hook).
        let access_ended = ends_access
            .zip(self.ports.as_ref())
            .zip(channels.clone())
            .map(|((EndsAccess(hook), ports), channels)| hook(channels, ports.store.clone()));
        let revocations = self.ports.as_ref().map(|ports| {
            Arc::new(Revocations::new(
                ports.store.clone(),
                options.revocation_window,
            ))
        });
        let ledger = self
            .ports
            .as_ref()
            .map(|ports| Arc::new(Ledger::new(ports.store.clone())));
        let role_book = self.ports.as_ref().map(|ports| {
            Arc::new(crate::role_book::StoredRoles::new(ports.store.clone()))
                as Arc<dyn crate::twilio::provisioning::RoleBook>
        });
        let emitter = Emitter::new(settings.clone(), self.event_queue.clone(), journal.clone());
        let access_log = self.ports.as_ref().map(|ports| {
            Arc::new(AccessLog::new(ports.store.clone()).with_listener(Arc::new(emitter.clone())))
        });
        let tokens = Arc::new(
            TokenService::new(
                settings.clone(),
                access_ended.clone(),
                revocations.clone(),
                ledger.clone(),
            )
            .with_access_log(access_log.clone())
            .with_role_book(role_book.clone()),
        );
        let sweeps = self.ports.as_ref().and_then(|p| p.queue.clone());
        let sweep_after =
            options.revocation_window + options.provisioning.budget + crate::platform::SWEEP_MARGIN;
        let platform = PlatformService::new(settings.clone(), revocations, access_ended, ledger)
            .with_sweeps(sweeps, sweep_after)
            .with_access_log(access_log)
            .with_role_book(role_book)
            .with_events(emitter.clone())
            .with_store(self.ports.as_ref().map(|p| p.store.clone()));
        let notifications = self.ports.zip(channels).map(|(ports, channels)| {
            let notifier = Notifier::new(settings.clone(), ports, channels, options.notify)
                .with_events(emitter);
            NotificationService::new(tokens.clone(), notifier)
        });
        let events = Deliverer::new(settings.clone(), self.event_queue, journal, options.events);
        App {
            settings,
            tokens,
            notifications,
            platform,
            events,
        }
    }
}

impl App {
    /// The token operations only.
    pub fn new(source: SettingsSource, options: AppOptions) -> Self {
        Self::builder(source, options).build()
    }

    pub fn builder(source: SettingsSource, options: AppOptions) -> AppBuilder {
        AppBuilder {
            source,
            options,
            ports: None,
            event_queue: None,
            lending: Lending::default(),
        }
    }

    pub fn settings(&self) -> &Arc<SettingsHolder> {
        &self.settings
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The platform API (its calls check the caller's access token).
    pub fn platform(&self) -> &PlatformService {
        &self.platform
    }

    /// Handles one queued message (the notifier Lambda's, local mode's worker): a sweep is
    /// the platform service's, the rest the notifier's.
    pub async fn handle_queued(&self, message: &QueueMessage) -> Result<()> {
        match message {
            QueueMessage::Sweep { identity } => self.platform.sweep(identity).await.map(|_| ()),
            QueueMessage::Event(event) => self.events.deliver(event).await.map(|_| ()),
            other => self.notifications()?.notify(other).await.map(|_| ()),
        }
    }

    pub fn notifications(&self) -> Result<&NotificationService> {
        self.notifications
            .as_ref()
            .ok_or_else(|| crate::feature::not_configured("The notification service"))
    }
}
