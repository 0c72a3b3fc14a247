//! The platform API: what platform backends call, authorized by the platform's OAuth 2.0
//! client-credentials access tokens (`token`).

pub mod service;
pub mod token;

pub use service::{PlatformService, RevokeResult, SWEEP_MARGIN, SweepResult, SyncResult};
pub use token::{PlatformCaller, PlatformVerifier, Scope};
