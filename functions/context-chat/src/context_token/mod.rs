//! Context tokens: the platform's signed statement of who a user is and which contexts
//! (chat rooms) they may use.

pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod platform;
pub mod verifier;

pub use jwks::{JwksCache, JwksPolicy};
pub use jwt::{LEEWAY_SECS, MAX_TOKEN_BYTES};
pub use verifier::{DEFAULT_MAX_TOKEN_LIFETIME_SECS, VerifiedToken, Verifier, now_unix};
