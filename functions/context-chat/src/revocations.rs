//! Revocations: after `revokeIdentity`, context tokens for the identity issued before that
//! moment (or without `iat`) are refused. The record lives in the store, where every process
//! sees it; each process remembers what it read for a minute, so a returning user costs at
//! most one store read per identity per minute, and a revocation reaches every process
//! within that minute (the revoking process at once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::context_token::VerifiedToken;
use crate::error::{ChatError, Result};
use crate::store::{self, Key, Store};

/// How long a process trusts what it read of an identity's revocation, by default.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// A revocation is kept this long: past the life of any token it refuses. Context tokens
/// carry their issuer's `exp`; a year is beyond any sensible one.
pub const KEEP_SECS: u64 = 366 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    pub identity: String,
    /// Tokens issued before this (unix seconds), or without `iat`, are refused.
    pub revoked_before: u64,
}

pub struct Revocations {
    store: Arc<dyn Store>,
    remember_for: Duration,
    /// By identity: the `revoked_before` read (if any), and when.
    seen: Cache<String, (Option<u64>, Instant)>,
}

impl Revocations {
    /// `remember_for`: how long what was read is trusted ([`REMEMBER_FOR`]).
    pub fn new(store: Arc<dyn Store>, remember_for: Duration) -> Self {
        Self {
            store,
            remember_for,
            seen: Cache::new(16_384),
        }
    }

    /// Refuses `token` when its identity was revoked after it was issued.
    pub async fn check(&self, token: &VerifiedToken) -> Result<()> {
        let Some(before) = self.revoked_before(&token.identity).await? else {
            return Ok(());
        };
        if token.issued_at.is_none_or(|iat| iat < before) {
            return Err(ChatError::access_denied(
                "This token was revoked: the platform ended this user's chat access. A token issued from now on works.",
            ));
        }
        Ok(())
    }

    /// When the identity was last revoked (tokens issued before it are refused), as this
    /// process last read it (at most a minute ago).
    pub async fn revoked_before(&self, identity: &str) -> Result<Option<u64>> {
        if let Some((before, at)) = self.seen.get(identity)
            && at.elapsed() < self.remember_for
        {
            return Ok(before);
        }
        let found =
            store::read::<Revocation>(self.store.as_ref(), &Key::Revocation(identity.to_owned()))
                .await?
                .map(|d| d.value.revoked_before);
        self.seen
            .insert(identity.to_owned(), (found, Instant::now()));
        Ok(found)
    }

    /// Revokes every token for `identity` issued before `now`; answers that moment. A later
    /// revocation only moves it forward.
    pub async fn revoke(&self, identity: &str, now: u64) -> Result<u64> {
        let before = store::update(
            self.store.as_ref(),
            &Key::Revocation(identity.to_owned()),
            |current: Option<&Revocation>| {
                let before = current.map_or(now, |c| c.revoked_before.max(now));
                let next = Revocation {
                    identity: identity.to_owned(),
                    revoked_before: before,
                };
                Ok((Some((next, Some(before + KEEP_SECS))), before))
            },
        )
        .await?;
        self.seen
            .insert(identity.to_owned(), (Some(before), Instant::now()));
        Ok(before)
    }
}
