//! Who could read a room when, and on whose authority (issue 34, adr/021): every membership
//! change the product makes is appended to the store, under the context: who joined or left,
//! when, and why — the context token that caused it (its ledger `xid`, `iss` and `kid`), a
//! platform client's `syncIdentity` or `revokeIdentity`, or the sweep that follows one.
//! Entries are kept as many days past their change as the ledger keeps its records past
//! their expiry (`chat/issuanceRetentionDays`), and hold nothing personal beyond the identity.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use futures_util::future::BoxFuture;

use crate::error::{ChatError, Result};
use crate::metrics::{self, Counter};
use crate::names::Role;
use crate::store::{Created, Key, Store, Stored, context_partition};

const ENTRY_PREFIX: &str = "ACCESS#";
const DAY_SECS: u64 = 24 * 3600;
/// Entries written in one store round trip (a DynamoDB transaction takes up to 100).
const BATCH: usize = 25;

/// Why a membership changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Cause {
    /// A context token (`createChatToken`, `issueChatToken`, the REST routes).
    #[serde(rename_all = "camelCase")]
    Token {
        /// The ledger record of the chat token minted for it; none without a ledger.
        xid: Option<String>,
        issuer: Option<String>,
        key_id: String,
    },
    /// A platform client's `syncIdentity`.
    Sync { client: String },
    /// A platform client's `revokeIdentity` (or `eraseIdentity`, which revokes).
    Revoke { client: String },
    /// A platform client's `archiveContext`: the room was closed.
    Archive { client: String },
    /// The second sweep after a sync or a revocation, undoing a join that raced it.
    Sweep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Joined,
    Left,
    /// Given a role (other than a plain member's join), `role` says which.
    Role,
}

/// One entry of a context's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub context: String,
    pub identity: String,
    pub change: Change,
    /// For a role change: `reader`, `member` or `moderator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Unix milliseconds.
    pub at_ms: u64,
    pub cause: Cause,
}

/// A time an identity could read a context's room: from its join (`None`: before the log's
/// oldest entry) to its leaving (`None`: still in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub identity: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// What let it in; `None` when the join is older than the log.
    pub cause: Option<Cause>,
    /// What took it out.
    pub ended_by: Option<Cause>,
}

fn key(entry: &Entry) -> Key {
    let change = match entry.change {
        Change::Joined => "joined",
        Change::Left => "left",
        Change::Role => "role",
    };
    Key::new(
        "access",
        context_partition(&entry.context),
        format!(
            "{ENTRY_PREFIX}{:015}#{}#{change}",
            entry.at_ms, entry.identity
        ),
    )
}

/// What one change did for an identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Changed<'a> {
    pub joined: &'a [String],
    pub left: &'a [String],
    /// Roles given (with a join) or changed.
    pub roles: &'a [(String, Role)],
}

/// Hears every change the log records (the events to the platform), with its cause.
pub trait ChangeListener: Send + Sync {
    fn changed<'a>(
        &'a self,
        identity: &'a str,
        changes: Changed<'a>,
        cause: &'a Cause,
        at_ms: u64,
    ) -> BoxFuture<'a, ()>;
}

pub struct AccessLog {
    store: Arc<dyn Store>,
    /// Joins and leaves also go to the platform as events, with the same cause.
    listener: Option<Arc<dyn ChangeListener>>,
}

impl AccessLog {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            listener: None,
        }
    }

    pub fn with_listener(mut self, listener: Arc<dyn ChangeListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Appends what one change did for `identity` now (nothing for no change), kept
    /// `retention_days` days past it.
    pub async fn changed(
        &self,
        identity: &str,
        changes: Changed<'_>,
        cause: &Cause,
        retention_days: u32,
    ) {
        if changes.joined.is_empty() && changes.left.is_empty() && changes.roles.is_empty() {
            return;
        }
        let at_ms = crate::clock::now_millis();
        self.record(identity, changes, cause, at_ms, retention_days)
            .await;
    }

    /// Appends what one change did for `identity`, kept `retention_days` days. A failure is
    /// logged and counted, and does not undo the change (Twilio has made it already).
    pub async fn record(
        &self,
        identity: &str,
        changes: Changed<'_>,
        cause: &Cause,
        at_ms: u64,
        retention_days: u32,
    ) {
        let entries = changes
            .joined
            .iter()
            .map(|c| (c, Change::Joined, None))
            .chain(changes.left.iter().map(|c| (c, Change::Left, None)))
            .chain(
                changes
                    .roles
                    .iter()
                    .map(|(c, r)| (c, Change::Role, Some(r.as_str().to_owned()))),
            )
            .map(|(context, change, role)| Entry {
                context: context.clone(),
                identity: identity.to_owned(),
                change,
                role,
                at_ms,
                cause: cause.clone(),
            });
        let keep_until = at_ms / 1000 + u64::from(retention_days) * DAY_SECS;
        let docs: Vec<(Key, Stored)> = entries
            .filter_map(|entry| {
                let Ok(Value::Object(fields)) = serde_json::to_value(&entry) else {
                    return None;
                };
                Some((
                    key(&entry),
                    Stored {
                        version: 1,
                        fields,
                        expires_at: Some(keep_until),
                    },
                ))
            })
            .collect();
        let written = async {
            for batch in docs.chunks(BATCH) {
                if let Err(err) = self.write(batch).await {
                    metrics::count(Counter::AccessLogFailures);
                    tracing::error!(identity, error_type = %err.kind, reason = %err.message, "membership changes not written to the access log");
                }
            }
        };
        let emitted = async {
            if let Some(listener) = &self.listener {
                listener.changed(identity, changes, cause, at_ms).await;
            }
        };
        tokio::join!(written, emitted);
    }

    /// One round trip; an entry that is there already (the same change in the same
    /// millisecond) is the same fact: the rest are written one by one.
    async fn write(&self, batch: &[(Key, Stored)]) -> Result<()> {
        match self
            .store
            .create_counted(Vec::new(), batch.to_vec())
            .await?
        {
            Created::Done => Ok(()),
            _ => {
                for (key, doc) in batch {
                    self.store
                        .put(key, doc.clone(), crate::store::Expect::Absent)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Who could read `context`'s room at some time from `from` to `to` (unix seconds), and
    /// on whose authority, in the order they got in.
    pub async fn spans(&self, context: &str, from: u64, to: u64) -> Result<Vec<Span>> {
        if from > to {
            return Err(ChatError::bad_request("from must not be after to."));
        }
        let found = self
            .store
            .query(&context_partition(context), ENTRY_PREFIX)
            .await?;
        let entries = found
            .into_iter()
            .map(|doc| {
                serde_json::from_value::<Entry>(Value::Object(doc.fields)).map_err(|e| {
                    tracing::error!(error = %e, "an access log entry does not parse");
                    ChatError::internal("An access log entry is damaged; see the logs.")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(spans_within(entries, from, to))
    }
}

/// The spans of `entries` (one context's) that overlap `from..=to` (unix seconds).
pub fn spans_within(mut entries: Vec<Entry>, from: u64, to: u64) -> Vec<Span> {
    entries.sort_by(|a, b| (a.at_ms, &a.identity).cmp(&(b.at_ms, &b.identity)));
    let mut open: BTreeMap<String, Span> = BTreeMap::new();
    let mut all = Vec::new();
    for entry in entries {
        let at = entry.at_ms / 1000;
        match entry.change {
            // A join while in (a repeat) changes nothing.
            Change::Joined => {
                open.entry(entry.identity.clone()).or_insert(Span {
                    identity: entry.identity,
                    from: Some(at),
                    to: None,
                    cause: Some(entry.cause),
                    ended_by: None,
                });
            }
            // A role within a span leaves it as it is.
            Change::Role => {}
            Change::Left => {
                let mut span = open.remove(&entry.identity).unwrap_or(Span {
                    identity: entry.identity,
                    from: None,
                    to: None,
                    cause: None,
                    ended_by: None,
                });
                span.to = Some(at);
                span.ended_by = Some(entry.cause);
                all.push(span);
            }
        }
    }
    all.extend(open.into_values());
    all.retain(|s| s.from.is_none_or(|f| f <= to) && s.to.is_none_or(|t| t >= from));
    all.sort_by(|a, b| (a.from, &a.identity).cmp(&(b.from, &b.identity)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(identity: &str, change: Change, at: u64, cause: Cause) -> Entry {
        Entry {
            context: "general".into(),
            identity: identity.into(),
            change,
            role: None,
            at_ms: at * 1000,
            cause,
        }
    }

    fn token(xid: &str) -> Cause {
        Cause::Token {
            xid: Some(xid.into()),
            issuer: Some("https://platform.example".into()),
            key_id: "k1".into(),
        }
    }

    #[test]
    fn spans_pair_joins_with_leavings_and_keep_those_that_overlap() {
        let sync = Cause::Sync {
            client: "toolbox".into(),
        };
        let revoke = Cause::Revoke {
            client: "toolbox".into(),
        };
        let entries = vec![
            entry("alex", Change::Joined, 100, token("x1")),
            entry("sam", Change::Joined, 150, sync.clone()),
            entry("alex", Change::Joined, 160, token("x2")), // a repeat: still the first span
            entry("alex", Change::Left, 200, revoke.clone()),
            entry("kim", Change::Left, 120, sync.clone()), // joined before the log began
            entry("lee", Change::Joined, 500, token("x3")),
        ];
        let spans = spans_within(entries.clone(), 130, 300);
        let shown: Vec<_> = spans
            .iter()
            .map(|s| (s.identity.as_str(), s.from, s.to))
            .collect();
        assert_eq!(
            shown,
            [("alex", Some(100), Some(200)), ("sam", Some(150), None)]
        );
        assert_eq!(spans[0].cause, Some(token("x1")));
        assert_eq!(spans[0].ended_by, Some(revoke));
        let early = spans_within(entries.clone(), 0, 110);
        let shown: Vec<_> = early.iter().map(|s| s.identity.as_str()).collect();
        assert_eq!(shown, ["kim", "alex"]);
        assert_eq!(early[0].cause, None);
        assert!(
            spans_within(entries, 201, 499)
                .iter()
                .all(|s| s.identity == "sam")
        );
    }

    #[test]
    fn causes_are_stored_as_tagged_objects() {
        let stored = serde_json::to_value(token("x1")).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"kind": "token", "xid": "x1", "issuer": "https://platform.example", "keyId": "k1"})
        );
        let sweep = serde_json::to_value(Cause::Sweep).unwrap();
        assert_eq!(sweep, serde_json::json!({"kind": "sweep"}));
    }
}
