//! Test support: stand-ins for the remote services Context Chat talks to, each behaving as
//! the real one does, and builders for the tokens a platform (or an attacker) would send.

pub mod issuer;
pub mod keys;
pub mod lambda;
pub mod moto;
pub mod prism;
pub mod proxy;
pub mod sendgrid;
pub mod sms;
pub mod twilio;
pub mod webhooks;

/// The DynamoDB client tests hold (moto's), for crates that do not name the SDK themselves.
pub use aws_sdk_dynamodb;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use axum::http::Method;
pub use issuer::{Behaviour, Issuer, runtime_and_issuer};
pub use keys::{TestKey, claims, early_in_a_minute, jwks, jwt_payload, legacy_jwks, now};
pub use lambda::{
    Emulator, Function, Invocation, appsync_event, http_api_event, mutation, retry_after,
};
pub use moto::{
    Moto, Stack, aws_env, delayed_count, drain_queue, put_notification_settings, put_parameter,
    put_settings, put_sms_settings, scan, ssm_client,
};
pub use proxy::CountingProxy;
pub use sendgrid::{SENDGRID_API_KEY, SENDGRID_DOMAIN, SendGridStandIn, SentEmail};
pub use sms::{SentSms, SmsStandIn};
pub use twilio::{API_SECRET, Fault, TwilioStandIn};
pub use webhooks::{
    AUTH_TOKEN, form_body, incoming_sms, on_message_added, on_message_added_at, sign_form,
};

/// Twilio identifiers of the same shape as real ones, for settings in tests.
pub use conversations_emulator::{ACCOUNT_SID, API_KEY_SID, CHAT_SERVICE_SID};
/// The deployment's link secret in tests (`/STACK/notifications/linkSecret`, `CHAT_LINK_SECRET`).
pub const LINK_SECRET: &str = "test-link-secret-0123456789abcdef";
/// The deployment's webhook path secret in tests (`/STACK/webhook/pathSecret`).
pub const WEBHOOK_PATH_SECRET: &str = "test-webhook-path-0123456789abcdef";

/// Fixtures other crates' tests read, included here, inside this package: a file included
/// from outside a package is tracked by its absolute path, which a fresh clone no longer has
/// (every clone would rebuild the including test).
pub mod fixtures {
    /// twilio-python's SMS requests, as `make_sms_requests.py` recorded them.
    pub const TWILIO_SMS_REQUESTS: &str = include_str!("../fixtures/twilio-sms-requests.json");
    /// An AppSync direct resolver event, as AppSync sends it.
    pub const APPSYNC_DIRECT_RESOLVER: &str =
        include_str!("../fixtures/appsync-direct-resolver.json");
}

/// The repository's root: the checkout the tests run in, found at run time. The build cache
/// is shared by every checkout and cargo counts a moved workspace as fresh, so a path fixed
/// at compile time may be another (perhaps deleted) clone's.
pub fn workspace_root() -> PathBuf {
    package_dir().join("../..")
}

/// The running test's package directory: `CARGO_MANIFEST_DIR` as cargo and nextest set it
/// when they run a test (not when they compiled it).
///
/// Not `env!`: a crate that reads an environment variable at compile time is rebuilt when
/// its value changes, and here it would change with every clone.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .expect("CARGO_MANIFEST_DIR: run the tests with cargo (scripts/test)")
}

/// Serves `app` on a free loopback port; the task stops when its handle is aborted.
pub async fn serve_on_loopback(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other test run uses, for SSM stacks and the like.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A folder of its own under the system's temporary directory, removed with all it holds
/// when dropped, so that test runs do not pile up in /tmp. Declare it before whatever
/// writes into it (a server process), so that it goes last.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process a test started on a loopback port (moto, Prism); killed when dropped.
pub(crate) struct LocalServer {
    _child: KilledOnDrop,
}

/// A child process, killed (and waited for) when this is dropped: a test's servers end
/// with the test, however it ends.
pub(crate) struct KilledOnDrop(pub(crate) Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl LocalServer {
    /// Starts `command`, which listens on `port`, and waits until it does. `what` names it
    /// and `install` says how to get it, for the panic a missing program causes.
    pub(crate) fn start(
        mut command: Command,
        port: u16,
        what: &str,
        install: &str,
        within: Duration,
    ) -> Self {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {what} ({}): {e}. {install}",
                    command.get_program().to_string_lossy()
                )
            });
        let server = Self {
            _child: KilledOnDrop(child),
        };
        let deadline = Instant::now() + within;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{what} did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}
