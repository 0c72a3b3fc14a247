//! The one table of the Lambdas' compositions: for each function, the settings it reads
//! (also what the deployment grants it: `reads::BY_FUNCTION`, which a test holds this table
//! to), what it loads during init, which AWS ports it builds and whether it texts. A handler
//! names its row and its fields; nothing else composes a Lambda. The ports and the SMS
//! client are function pointers, so that a binary links only the adapters its row names.

use std::sync::Arc;

use context_chat::notifications::Ports;
use context_chat::notifications::channels::sms::settings::{MakeGateway as SmsMaker, Maker};
use context_chat::notifications::twilio_sms::TwilioSms;
use context_chat::settings::{Reads, SettingsSource, reads};
use context_chat::{App, AppOptions, Result};

/// What a function loads during init, so that its first invocation does not wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warm {
    /// Settings and the issuer's keys: the functions that verify context tokens.
    SettingsAndKeys,
    /// Settings only.
    Settings,
    /// Settings and the platform's keys: the platform API's function.
    SettingsAndPlatformKeys,
}

/// Makes a function's ports from the environment (`aws_ports`).
pub type PortsMaker = fn(&aws_config::SdkConfig) -> Result<Ports>;

/// One function's row.
#[derive(Clone, Copy)]
pub struct Profile {
    /// The handler crate's name: its metrics' `function` dimension.
    pub function: &'static str,
    pub reads: Reads,
    pub warm: Warm,
    pub ports: PortsMaker,
    /// How it makes Twilio's SMS client, when it texts.
    pub sms: Option<SmsMaker>,
}

/// The table `NOTIFICATIONS_TABLE` names, and no queue: the token functions (revocations,
/// the ledger, subscriptions that end with the contexts provisioning takes away).
fn store(config: &aws_config::SdkConfig) -> Result<Ports> {
    Ok(Ports {
        store: aws_ports::store_from_env(config)?,
        queue: None,
        public_url: None,
    })
}

/// The table and the queues their variables name.
fn store_and_queues(config: &aws_config::SdkConfig) -> Result<Ports> {
    aws_ports::ports_from_env(config)
}

const TEXTS: Option<SmsMaker> = Some(TwilioSms::gateway);

#[rustfmt::skip]
pub mod table {
    use super::*;
    use Warm::*;

    macro_rules! row {
        ($f:literal, $reads:ident, $warm:ident, $ports:ident, $sms:expr) => {
            Profile { function: $f, reads: reads::$reads, warm: $warm, ports: $ports, sms: $sms }
        };
    }

    pub const VERIFY_TOKEN: Profile =
        row!("verify-token", VERIFY_TOKEN, SettingsAndKeys, store, None);
    pub const CREATE_CHAT_TOKEN: Profile =
        row!("create-chat-token", CREATE_CHAT_TOKEN, SettingsAndKeys, store, None);
    pub const TOKEN_ROUTES: Profile =
        row!("token-routes", CREATE_CHAT_TOKEN, SettingsAndKeys, store, None);
    /// The widget's calls carry no token to `verifyEmail`: its keys wait for the first one.
    pub const VERIFY_EMAIL: Profile =
        row!("verify-email", VERIFY_EMAIL, Settings, store_and_queues, TEXTS);
    pub const ENABLE_CHANNEL_NOTIFICATIONS: Profile = row!(
        "enable-channel-notifications", ENABLE_CHANNEL_NOTIFICATIONS, SettingsAndKeys,
        store_and_queues, TEXTS
    );
    pub const NOTIFY: Profile = row!("notify", NOTIFY, Settings, store_and_queues, TEXTS);
    pub const TWILIO_WEBHOOK: Profile =
        row!("twilio-webhook", TWILIO_WEBHOOK, Settings, store_and_queues, None);
    /// The platform API's sweeps go through the delay queue.
    pub const PLATFORM_API: Profile =
        row!("platform-api", PLATFORM_API, SettingsAndPlatformKeys, store_and_queues, None);

    /// Every row, for the tests that hold the table to the deployment.
    pub const ALL: [Profile; 8] = [
        VERIFY_TOKEN, CREATE_CHAT_TOKEN, TOKEN_ROUTES, VERIFY_EMAIL,
        ENABLE_CHANNEL_NOTIFICATIONS, NOTIFY, TWILIO_WEBHOOK, PLATFORM_API,
    ];
}

/// Starts a function: its logs and metrics named after it, then the process's one [`App`]
/// as its row says, warmed during init rather than on the first invocation. A failure here
/// is logged; invocations retry and report it.
pub async fn start(profile: &Profile) -> Arc<App> {
    crate::init(profile.function);
    let config = context_chat::aws_env::sdk_config();
    let source = SettingsSource::from_env(profile.reads, async { config.clone() }).await;
    let mut app = App::builder(source, AppOptions::default());
    if let Some(make) = profile.sms {
        app = app.lend(Maker(make));
    }
    match (profile.ports)(&config) {
        Ok(ports) => app = app.ports(ports),
        Err(err) => {
            tracing::error!(reason = %err.message, "the store is not set up; calls that need it will fail")
        }
    }
    let app = Arc::new(app.build());
    let warmed = match profile.warm {
        Warm::SettingsAndKeys => app.settings().warm_up().await,
        Warm::Settings => app.settings().current().await.map(|_| ()),
        Warm::SettingsAndPlatformKeys => app.settings().warm_up_platform().await,
    };
    if let Err(err) = warmed {
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
        for row in table::ALL {
            let (_, grant) = granted
                .iter()
                .find(|(f, _)| *f == row.function)
                .unwrap_or_else(|| panic!("{} is granted nothing", row.function));
            assert_eq!(row.reads, *grant, "{}", row.function);
        }
    }

    #[test]
    fn every_row_names_a_handler_crate() {
        let functions = test_support::workspace_root().join("functions");
        for row in table::ALL {
            let main = functions.join(row.function).join("src/main.rs");
            let source = std::fs::read_to_string(&main)
                .unwrap_or_else(|e| panic!("{}: {e}", main.display()));
            let constant = row.function.to_uppercase().replace('-', "_");
            assert!(
                source.contains(&format!("table::{constant}")),
                "{} does not start with its row",
                row.function
            );
        }
    }
}
