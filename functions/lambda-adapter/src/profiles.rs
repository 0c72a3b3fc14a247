//! The one table of the Lambdas' compositions: for each function, the settings it reads
//! (also what the deployment grants it: `reads::BY_FUNCTION`, which a test holds this table
//! to), what it loads during init, which AWS ports it builds, whether it texts and whether it
//! takes access away. A handler names its row and its fields; nothing else composes a
//! Lambda. What differs between rows is decided at compile time (the warm-up is a type; the
//! ports, the SMS client and the access-ended hook are function pointers in the row's
//! constant), so that a binary links only what its row names.

use std::future::Future;
use std::sync::Arc;

use context_chat::notifications::Ports;
use context_chat::notifications::channels::sms::settings::{MakeGateway as SmsMaker, Maker};
use context_chat::notifications::service::EndsAccess;
use context_chat::notifications::twilio_sms::TwilioSms;
use context_chat::settings::{Reads, Section, SettingsSource, reads};
use context_chat::{App, AppOptions, Result};

/// What a function loads during init, so that its first invocation does not wait for it.
pub trait Warm: Copy {
    fn warm(app: &App) -> impl Future<Output = Result<()>> + Send + '_;
}

/// Settings and the issuer's keys: the functions that verify context tokens.
#[derive(Debug, Clone, Copy)]
pub struct Keys;
/// Settings only.
#[derive(Debug, Clone, Copy)]
pub struct SettingsOnly;
/// Settings and the platform's keys: the platform API's function.
#[derive(Debug, Clone, Copy)]
pub struct PlatformKeys;

impl Warm for Keys {
    fn warm(app: &App) -> impl Future<Output = Result<()>> + Send + '_ {
        app.settings().warm_up()
    }
}

impl Warm for SettingsOnly {
    async fn warm(app: &App) -> Result<()> {
        app.settings().current().await.map(|_| ())
    }
}

impl Warm for PlatformKeys {
    fn warm(app: &App) -> impl Future<Output = Result<()>> + Send + '_ {
        app.settings().warm_up_platform()
    }
}

/// Makes a function's ports from the environment (`aws_ports`); `None`: it has none.
pub type PortsMaker = fn(&aws_config::SdkConfig) -> Result<Option<Ports>>;

/// Makes the events queue from the environment (`EVENTS_QUEUE_URL`), in the functions that
/// emit or deliver events; the others do not link the SQS client for it.
pub type EventsMaker =
    fn(&aws_config::SdkConfig) -> Option<Arc<dyn context_chat::events::EventQueue>>;

/// One function's row; `W`, its warm-up.
#[derive(Clone, Copy)]
pub struct Profile<W: Warm> {
    /// The handler crate's name: its metrics' `function` dimension.
    pub function: &'static str,
    pub reads: Reads,
    pub warm: W,
    pub ports: PortsMaker,
    /// How it makes Twilio's SMS client, when it texts.
    pub sms: Option<SmsMaker>,
    /// The hook that ends subscriptions with access: in the functions that provision (they
    /// read Twilio's settings), which are the ones that take access away.
    pub ends_access: Option<EndsAccess>,
    /// The events queue: in the functions that read the events' settings.
    pub events: Option<EventsMaker>,
}

impl<W: Warm> Profile<W> {
    pub const fn new(
        function: &'static str,
        reads: Reads,
        warm: W,
        ports: PortsMaker,
        sms: Option<SmsMaker>,
    ) -> Self {
        let ends_access = match reads.has(Section::Twilio) {
            true => Some(EndsAccess::HOOK),
            false => None,
        };
        let events: Option<EventsMaker> =
            match reads.has(Section::Events) || reads.has(Section::EventDelivery) {
                true => Some(aws_ports::event_queue_from_env),
                false => None,
            };
        Profile {
            function,
            reads,
            warm,
            ports,
            sms,
            ends_access,
            events,
        }
    }

    /// What the tests hold to the deployment.
    pub const fn row(&self) -> (&'static str, Reads, bool) {
        (self.function, self.reads, self.ends_access.is_some())
    }
}

/// The table `NOTIFICATIONS_TABLE` names, and no queue: the token functions (revocations,
/// the ledger, subscriptions that end with the contexts provisioning takes away).
fn store(config: &aws_config::SdkConfig) -> Result<Option<Ports>> {
    Ok(Some(Ports {
        store: aws_ports::store_from_env(config)?,
        queue: None,
        public_url: None,
    }))
}

/// The table and the queues their variables name.
fn store_and_queues(config: &aws_config::SdkConfig) -> Result<Option<Ports>> {
    aws_ports::ports_from_env(config).map(Some)
}

/// Neither table nor notifier queue: the events' deliverer has its queue only.
fn no_store(_: &aws_config::SdkConfig) -> Result<Option<Ports>> {
    Ok(None)
}

const TEXTS: Option<SmsMaker> = Some(TwilioSms::gateway);

#[rustfmt::skip]
pub mod table {
    use super::*;

    /// Declares a row's constant: its warm-up type, function, sections, ports and SMS.
    macro_rules! row {
        ($(#[$doc:meta])* $name:ident: $warm:ident = $f:literal, $reads:ident, $ports:ident, $sms:expr) => {
            $(#[$doc])*
            pub const $name: Profile<$warm> = Profile::new($f, reads::$reads, $warm, $ports, $sms);
        };
    }

    row!(VERIFY_TOKEN: Keys = "verify-token", VERIFY_TOKEN, store, None);
    row!(CREATE_CHAT_TOKEN: Keys = "create-chat-token", CREATE_CHAT_TOKEN, store, None);
    row!(TOKEN_ROUTES: Keys = "token-routes", CREATE_CHAT_TOKEN, store, None);
    row!(
        /// The widget's calls carry no token to `verifyEmail`: its keys wait for the first one.
        VERIFY_EMAIL: SettingsOnly = "verify-email", VERIFY_EMAIL, store_and_queues, TEXTS
    );
    row!(
        ENABLE_CHANNEL_NOTIFICATIONS: Keys = "enable-channel-notifications",
        ENABLE_CHANNEL_NOTIFICATIONS, store_and_queues, TEXTS
    );
    row!(NOTIFY: SettingsOnly = "notify", NOTIFY, store_and_queues, TEXTS);
    row!(TWILIO_WEBHOOK: SettingsOnly = "twilio-webhook", TWILIO_WEBHOOK, store_and_queues, None);
    row!(
        /// The platform API's sweeps go through the delay queue.
        PLATFORM_API: PlatformKeys = "platform-api", PLATFORM_API, store_and_queues, None
    );
    row!(
        /// Events to the platform, from their queue (`EVENTS_QUEUE_URL`, as every emitter's).
        DELIVER_EVENTS: SettingsOnly = "deliver-events", DELIVER_EVENTS, no_store, None
    );

    /// Every row (function, sections, whether it ends access), for the tests that hold the
    /// table to the deployment.
    pub const ALL: [(&str, Reads, bool); 9] = [
        VERIFY_TOKEN.row(), CREATE_CHAT_TOKEN.row(), TOKEN_ROUTES.row(), VERIFY_EMAIL.row(),
        ENABLE_CHANNEL_NOTIFICATIONS.row(), NOTIFY.row(), TWILIO_WEBHOOK.row(), PLATFORM_API.row(),
        DELIVER_EVENTS.row(),
    ];
}

/// Starts a function: its logs and metrics named after it, then the process's one [`App`]
/// as its row says, warmed during init rather than on the first invocation. A failure here
/// is logged; invocations retry and report it.
pub async fn start<W: Warm>(profile: &Profile<W>) -> Arc<App> {
    crate::init(profile.function);
    let config = context_chat::aws_env::sdk_config();
    let source = SettingsSource::from_env(profile.reads, async { config.clone() }).await;
    let mut app = App::builder(source, AppOptions::default());
    if let Some(make) = profile.sms {
        app = app.lend(Maker(make));
    }
    if let Some(hook) = profile.ends_access {
        app = app.lend(hook);
    }
    match (profile.ports)(&config) {
        Ok(Some(ports)) => app = app.ports(ports),
        Ok(None) => {}
        Err(err) => {
            tracing::error!(reason = %err.message, "the store is not set up; calls that need it will fail")
        }
    }
    // Every function that changes what events tell of has the events queue when the
    // deployment sends events (the deliverer too: it queues the next try).
    if let Some(queue) = profile.events.and_then(|make| make(&config)) {
        app = app.event_queue(queue);
    }
    let app = Arc::new(app.build());
    if let Err(err) = W::warm(&app).await {
        tracing::error!(error_type = %err.kind, reason = %err.message, "warm-up failed; invocations will retry");
    }
    app
}

/// The dev-extras stack's token API (issue-dev-token), which reads no settings: the
/// development key from SSM under `/STACK-dev-extras/chat-development/` (read during init; a
/// failure is logged, and the next request tries again), and the ledger in the table
/// `NOTIFICATIONS_TABLE` names, limited per client address.
#[cfg(feature = "http")]
pub async fn start_dev_tokens() -> axum::Router {
    use context_chat::dev_token::DevIssuerSource;
    use context_chat::http::dev_tokens::{self, DevTokens};
    use context_chat::ledger::Ledger;

    crate::init("issue-dev-token");
    let issuer = Arc::new(DevIssuerSource::from_env());
    let _ = issuer.get().await;
    let ledger = aws_ports::store_from_env(&context_chat::aws_env::sdk_config())
        .inspect_err(|e| tracing::error!(reason = %e.message, "no ledger: tokens are neither recorded nor limited"))
        .ok()
        .map(|store| Arc::new(Ledger::new(store)));
    dev_tokens::routes(Arc::new(DevTokens {
        issuer,
        ledger,
        retention_days: context_chat::settings::retention_days_from_env(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_reads_what_the_deployment_grants_its_function() {
        let granted = reads::BY_FUNCTION;
        assert_eq!(table::ALL.len(), granted.len());
        for (function, reads, _) in table::ALL {
            let (_, grant) = granted
                .iter()
                .find(|(f, _)| *f == function)
                .unwrap_or_else(|| panic!("{function} is granted nothing"));
            assert_eq!(reads, *grant, "{function}");
        }
    }

    #[test]
    fn every_row_names_a_handler_crate() {
        let functions = test_support::workspace_root().join("functions");
        for (function, _, _) in table::ALL {
            let main = functions.join(function).join("src/main.rs");
            let source = std::fs::read_to_string(&main)
                .unwrap_or_else(|e| panic!("{}: {e}", main.display()));
            let constant = function.to_uppercase().replace('-', "_");
            assert!(
                source.contains(&format!("table::{constant}")),
                "{function} does not start with its row"
            );
        }
    }

    #[test]
    fn only_the_functions_that_emit_or_deliver_events_make_the_events_queue() {
        use table::*;
        let with = [
            CREATE_CHAT_TOKEN.events.is_some(),
            TOKEN_ROUTES.events.is_some(),
            NOTIFY.events.is_some(),
            PLATFORM_API.events.is_some(),
            DELIVER_EVENTS.events.is_some(),
        ];
        let without = [
            VERIFY_TOKEN.events.is_some(),
            VERIFY_EMAIL.events.is_some(),
            ENABLE_CHANNEL_NOTIFICATIONS.events.is_some(),
            TWILIO_WEBHOOK.events.is_some(),
        ];
        assert_eq!(with, [true; 5]);
        assert_eq!(without, [false; 4]);
    }

    #[test]
    fn the_functions_that_provision_and_only_they_end_subscriptions_with_access() {
        for (function, reads, ends_access) in table::ALL {
            assert_eq!(ends_access, reads.has(Section::Twilio), "{function}");
        }
        let ending: Vec<&str> = table::ALL.iter().filter(|r| r.2).map(|r| r.0).collect();
        assert_eq!(
            ending,
            [
                "create-chat-token",
                "token-routes",
                "notify",
                "platform-api"
            ]
        );
    }
}
