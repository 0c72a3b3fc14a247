//! Test support: stand-ins for the remote services Context Chat talks to, each behaving as
//! the real one does, and builders for the tokens a platform (or an attacker) would send.

pub mod issuer;
pub mod keys;
pub mod lambda;
pub mod moto;
pub mod proxy;

use std::net::TcpListener;
use std::path::PathBuf;

pub use issuer::{Behaviour, Issuer};
pub use keys::{TestKey, claims, jwks, legacy_jwks, now};
pub use lambda::{Emulator, Function, Invocation, appsync_event};
pub use moto::{Moto, put_parameter, put_settings, ssm_client};
pub use proxy::CountingProxy;

/// Twilio identifiers of the same shape as real ones, for settings in tests.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const API_KEY_SID: &str = "SKfedcba9876543210fedcba9876543210";
pub const CHAT_SERVICE_SID: &str = "IS00112233445566778899aabbccddeeff";

/// The repository's root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
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
