//! The platform API: what platform backends call, authorized by the platform's OAuth 2.0
//! client-credentials access tokens (`token`).

pub mod service;
/// Its access tokens are checked where context tokens are (`context_token::platform`).
pub use crate::context_token::platform as token;

pub use crate::context_token::platform::{PlatformCaller, PlatformVerifier, Scope};
pub use service::{PlatformService, RevokeResult, SWEEP_MARGIN, SweepResult, SyncResult};
