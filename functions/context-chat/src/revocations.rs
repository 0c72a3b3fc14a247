//! The platform's word on an identity's access (`revokeIdentity`, `syncIdentity`; adr/012).
//! After a revocation, context tokens for the identity issued before it (or without `iat`)
//! are refused; after a sync, tokens issued before it provision the synced contexts, not
//! their own. The record lives in the store, where every process sees it; each process
//! remembers what it read for a minute, so a returning user costs at most one store read per
//! identity per minute. Before provisioning adds a participant, the record is read from the
//! store again ([`AccessGate`]): what a process remembers can refuse or redirect a token,
//! never let one join.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};

use crate::context_token::VerifiedToken;
use crate::error::{ChatError, Result};
use crate::store::{self, Key, Store, identity_partition};
use crate::twilio::provisioning::JoinGate;

/// How long a process trusts what it read of an identity's record, by default.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// A record is kept this long past its last moment: past the life of any token it refuses.
/// Context tokens carry their issuer's `exp`; a year is beyond any sensible one.
pub const KEEP_SECS: u64 = 366 * 24 * 3600;

/// One identity's record. Stored under the old name (`REVOKED`), so that the records
/// written before syncs were recorded read as revocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub identity: String,
    /// Tokens issued before this (unix seconds), or without `iat`, are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_before: Option<u64>,
    /// When the platform last said which contexts the identity has (a sync or a
    /// revocation): tokens issued before it follow `word`, not their own contexts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_at: Option<u64>,
    /// The newest word on the identity's contexts: the platform's, or that of a token issued
    /// after it that joined since. What the delayed sweep makes true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word: Option<Word>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    /// Unix seconds: a statement's moment, or a token's `iat`.
    pub at: u64,
    pub contexts: Vec<String>,
}

/// What a token may do by an identity's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Issued before a revocation (or without `iat` after one).
    Refused,
    /// Newer than anything the platform said since: its own contexts.
    Own,
    /// Issued before a sync: the contexts of the newest word instead of its own.
    Follows(Vec<String>),
}

impl Access {
    /// When the platform last spoke (a record written before syncs: its revocation).
    pub fn stated_at(&self) -> Option<u64> {
        self.stated_at.or(self.revoked_before)
    }

    /// The newest word (a record written before syncs: no contexts, since its revocation).
    pub fn word(&self) -> Word {
        self.word.clone().unwrap_or_else(|| Word {
            at: self.revoked_before.unwrap_or_default(),
            contexts: Vec::new(),
        })
    }

    pub fn standing(&self, issued_at: Option<u64>) -> Standing {
        let before =
            |moment: Option<u64>| moment.is_some_and(|m| issued_at.is_none_or(|iat| iat < m));
        if before(self.revoked_before) {
            Standing::Refused
        } else if before(self.stated_at()) {
            Standing::Follows(self.word().contexts)
        } else {
            Standing::Own
        }
    }

    fn expires_at(&self) -> u64 {
        let last = [self.revoked_before, self.stated_at, Some(self.word().at)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or_default();
        last + KEEP_SECS
    }
}

fn revoked() -> ChatError {
    ChatError::access_denied(
        "This token was revoked: the platform ended this user's chat access. A token issued from now on works.",
    )
}

pub struct Revocations {
    store: Arc<dyn Store>,
    remember_for: Duration,
    /// By identity: the record read (if any), and when.
    seen: Cache<String, (Option<Arc<Access>>, Instant)>,
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

    /// How long what a process read is trusted: the longest a token another process revoked
    /// may still be answered from memory (never by a join).
    pub fn remember_for(&self) -> Duration {
        self.remember_for
    }

    /// Refuses `token` when its identity was revoked after it was issued.
    pub async fn check(&self, token: &VerifiedToken) -> Result<()> {
        match self.remembered(&token.identity).await? {
            Some(access) if access.standing(token.issued_at) == Standing::Refused => Err(revoked()),
            _ => Ok(()),
        }
    }

    /// The identity's record as this process last read it (at most `remember_for` ago).
    pub async fn remembered(&self, identity: &str) -> Result<Option<Arc<Access>>> {
        if let Some((access, at)) = self.seen.get(identity)
            && at.elapsed() < self.remember_for
        {
            return Ok(access);
        }
        self.fresh(identity).await
    }

    /// The identity's record as the store has it now (and remembered from now on).
    pub async fn fresh(&self, identity: &str) -> Result<Option<Arc<Access>>> {
        let found = store::read::<Access>(self.store.as_ref(), &key(identity))
            .await?
            .map(|d| Arc::new(d.value));
        self.seen
            .insert(identity.to_owned(), (found.clone(), Instant::now()));
        Ok(found)
    }

    /// Revokes every token for `identity` issued before `now`; answers that moment. A later
    /// revocation only moves it forward. The identity's word becomes "no contexts".
    pub async fn revoke(&self, identity: &str, now: u64) -> Result<u64> {
        let access = self
            .change(identity, |access| {
                access.revoked_before = Some(access.revoked_before.unwrap_or(now).max(now));
                state(access, now, Vec::new());
                true
            })
            .await?;
        Ok(access.revoked_before.unwrap_or(now))
    }

    /// Records the platform's word that `identity` has exactly `contexts` (a sync): tokens
    /// issued before `now` follow it.
    pub async fn sync(&self, identity: &str, contexts: &[String], now: u64) -> Result<()> {
        self.change(identity, |access| {
            state(access, now, contexts.to_vec());
            true
        })
        .await
        .map(|_| ())
    }

    /// Records that a token issued at `issued_at` with `contexts` joined, where a record
    /// exists and the token is newer than its word: the sweep then keeps what it provisioned.
    async fn admitted(&self, identity: &str, issued_at: u64, contexts: &[String]) -> Result<()> {
        let word = Word {
            at: issued_at,
            contexts: contexts.to_vec(),
        };
        // In the same second as a statement, the token came after it: it was checked
        // against the record that holds it.
        self.change(identity, |access| {
            let current = access.word();
            let newer = current.at <= issued_at && current != word;
            if newer {
                access.word = Some(word.clone());
            }
            newer
        })
        .await
        .map(|_| ())
    }

    /// Read, change, write if unchanged; `change` answers whether it changed anything.
    async fn change(
        &self,
        identity: &str,
        mut change: impl FnMut(&mut Access) -> bool,
    ) -> Result<Arc<Access>> {
        let access = store::update(
            self.store.as_ref(),
            &key(identity),
            |current: Option<&Access>| {
                let mut next = current.cloned().unwrap_or_else(|| Access {
                    identity: identity.to_owned(),
                    ..Access::default()
                });
                if !change(&mut next) {
                    return Ok((None, next));
                }
                let expires_at = next.expires_at();
                Ok((Some((next.clone(), Some(expires_at))), next))
            },
        )
        .await?;
        let access = Arc::new(access);
        self.seen
            .insert(identity.to_owned(), (Some(access.clone()), Instant::now()));
        Ok(access)
    }

    /// What a token may provision now, as this process remembers the record; the
    /// [`AccessGate`] it hands provisioning reads the store again before any join.
    pub async fn admission(
        self: &Arc<Self>,
        token: &VerifiedToken,
    ) -> Result<(Vec<String>, Option<u64>, Arc<AccessGate>)> {
        let access = self.remembered(&token.identity).await?;
        let contexts = planned(access.as_deref(), token.issued_at, &token.contexts)?;
        let not_before = access.as_deref().and_then(Access::stated_at);
        let gate = Arc::new(AccessGate {
            revocations: self.clone(),
            identity: token.identity.clone(),
            issued_at: token.issued_at,
            own: token.contexts.clone(),
            planned: contexts.clone(),
            stale: AtomicBool::new(false),
        });
        Ok((contexts, not_before, gate))
    }
}

/// The contexts a token issued at `issued_at` with `own` contexts provisions by `access`.
fn planned(access: Option<&Access>, issued_at: Option<u64>, own: &[String]) -> Result<Vec<String>> {
    Ok(match access.map(|a| a.standing(issued_at)) {
        Some(Standing::Refused) => return Err(revoked()),
        Some(Standing::Follows(contexts)) => contexts,
        None | Some(Standing::Own) => own.to_vec(),
    })
}

/// A new statement at `now`: tokens issued before it follow `contexts`.
fn state(access: &mut Access, now: u64, contexts: Vec<String>) {
    access.stated_at = Some(access.stated_at().unwrap_or(now).max(now));
    if access.word().at <= now {
        access.word = Some(Word { at: now, contexts });
    }
}

/// Where an identity's access record lives: what the platform last said (`revokeIdentity`,
/// `syncIdentity`) of tokens issued before a time.
pub fn key(identity: &str) -> Key {
    Key::new("access", identity_partition(identity), "REVOKED")
}

/// Asked by provisioning before it adds the identity to any conversation: the record is
/// read from the store (DynamoDB: a consistent read), so that no process joins a revoked
/// identity, nor joins an old token's contexts after a sync, whatever it remembers.
pub struct AccessGate {
    revocations: Arc<Revocations>,
    identity: String,
    issued_at: Option<u64>,
    own: Vec<String>,
    planned: Vec<String>,
    stale: AtomicBool,
}

impl AccessGate {
    /// The record changed since the plan was made (a sync elsewhere): plan again.
    pub fn stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    async fn check(&self) -> Result<()> {
        let Some(access) = self.revocations.fresh(&self.identity).await? else {
            return Ok(());
        };
        let now_planned = planned(Some(&access), self.issued_at, &self.own)?;
        if now_planned != self.planned {
            self.stale.store(true, Ordering::Relaxed);
            return Err(ChatError::conflict(
                "The platform changed this user's chat access meanwhile; ask again.",
            ));
        }
        if let (Standing::Own, Some(issued_at)) = (access.standing(self.issued_at), self.issued_at)
        {
            self.revocations
                .admitted(&self.identity, issued_at, &self.own)
                .await?;
        }
        Ok(())
    }
}

impl JoinGate for AccessGate {
    fn before_join(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.check())
    }

    fn key(&self) -> String {
        self.issued_at.map_or_else(|| "-".into(), |t| t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(revoked: Option<u64>, stated: Option<u64>, word: Option<(u64, &[&str])>) -> Access {
        Access {
            identity: "alex".into(),
            revoked_before: revoked,
            stated_at: stated,
            word: word.map(|(at, c)| Word {
                at,
                contexts: c.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    #[test]
    fn a_record_from_before_syncs_reads_as_a_revocation() {
        let old: Access =
            serde_json::from_value(serde_json::json!({"identity": "alex", "revokedBefore": 100}))
                .unwrap();
        assert_eq!(old.standing(Some(99)), Standing::Refused);
        assert_eq!(old.standing(None), Standing::Refused);
        assert_eq!(old.standing(Some(100)), Standing::Own);
        assert_eq!(
            old.word(),
            Word {
                at: 100,
                contexts: vec![]
            }
        );
    }

    #[test]
    fn tokens_before_a_sync_follow_its_word_and_newer_ones_their_own() {
        let synced = access(None, Some(200), Some((250, &["a", "c"])));
        assert_eq!(
            synced.standing(Some(199)),
            Standing::Follows(vec!["a".into(), "c".into()])
        );
        assert_eq!(
            synced.standing(None),
            Standing::Follows(vec!["a".into(), "c".into()])
        );
        assert_eq!(synced.standing(Some(200)), Standing::Own);
        // A revocation before the sync still refuses what came before it.
        let both = access(Some(150), Some(200), Some((200, &["a"])));
        assert_eq!(both.standing(Some(149)), Standing::Refused);
        assert_eq!(
            both.standing(Some(160)),
            Standing::Follows(vec!["a".into()])
        );
    }

    #[test]
    fn a_statement_never_moves_back_and_an_older_word_does_not_replace_a_newer() {
        let mut a = access(Some(300), Some(300), Some((320, &["x"])));
        state(&mut a, 310, vec!["y".into()]);
        assert_eq!(a.stated_at, Some(310));
        assert_eq!(
            a.word().contexts,
            vec!["x".to_string()],
            "the token's word at 320 is newer"
        );
        state(&mut a, 290, vec!["z".into()]);
        assert_eq!(a.stated_at, Some(310));
        assert!(a.expires_at() >= 320 + KEEP_SECS);
    }
}
