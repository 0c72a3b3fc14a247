//! The token ledger and the minting limits: every token this product mints is recorded by a
//! transaction id (`xid`) with the SHA-256 of the token, never the token, and kept a
//! retention period past its expiry; and no identity (or, for the dev token API, no client
//! address) mints more than a number of tokens a minute, counted in the store where every
//! process sees it. The limit check and the record are one store round trip
//! ([`Store::create_counted`]); see `adr/013-token-ledger.md`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ChatError, ErrorKind, Result};
use crate::store::{Count, Created, Key, Store, Stored, identity_partition};

/// Tokens one identity may mint a minute, unless the settings say otherwise.
pub const DEFAULT_TOKENS_PER_MINUTE: u32 = 20;
/// Days a record is kept past its token's expiry, unless the settings say otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Context tokens the dev token API signs a minute for one client address.
pub const DEV_TOKENS_PER_MINUTE: u32 = 10;
/// Longest transaction id.
pub const MAX_XID_CHARS: usize = 64;
/// How many records `tokenIssuances` lists unless asked, and at most.
pub const DEFAULT_LIST: usize = 20;
pub const MAX_LIST: usize = 100;

const WINDOW_SECS: u64 = 60;
const DAY_SECS: u64 = 24 * 3600;

/// What kind of token a record is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Twilio access token (`createChatToken`, `issueChatToken`).
    TwilioChat,
    /// A context token signed by the dev token API.
    ContextDev,
    /// A Virgil E3Kit JWT.
    Virgil,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TwilioChat => "twilio-chat",
            Kind::ContextDev => "context-dev",
            Kind::Virgil => "virgil",
        }
    }
}

/// One minted token, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issuance {
    pub xid: String,
    pub kind: Kind,
    pub identity: String,
    pub contexts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Unix seconds.
    pub issued_at: u64,
    /// The token's expiry, unix seconds. Stored as `tokenExpiresAt`: `expiresAt` is the
    /// table's TTL attribute, when the record itself goes.
    #[serde(rename = "tokenExpiresAt")]
    pub expires_at: u64,
    /// Lowercase hex.
    pub token_sha256: String,
}

impl Issuance {
    /// The record of `token`; only its hash is kept.
    #[allow(clippy::too_many_arguments)]
    pub fn of(
        kind: Kind,
        xid: String,
        identity: &str,
        contexts: &[String],
        device_id: Option<&str>,
        token: &str,
        issued_at: u64,
        expires_at: u64,
    ) -> Self {
        Self {
            xid,
            kind,
            identity: identity.to_owned(),
            contexts: contexts.to_vec(),
            device_id: device_id.map(str::to_owned),
            issued_at,
            expires_at,
            token_sha256: sha256_hex(token),
        }
    }
}

/// The SHA-256 of a token, lowercase hex: how the ledger names a token without holding it.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// A caller's transaction id: 1–64 of `A-Z a-z 0-9 . _ : -`.
pub fn check_xid(xid: &str) -> Result<()> {
    let ok = !xid.is_empty()
        && xid.len() <= MAX_XID_CHARS
        && xid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ChatError::bad_request(format!(
            "xid must be 1 to {MAX_XID_CHARS} of A-Z a-z 0-9 . _ : -"
        )))
    }
}

/// A new transaction id: a random (version 4) UUID.
pub fn new_xid() -> Result<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ChatError::internal("No randomness for a transaction id."))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// How minting is limited and how long records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerPolicy {
    /// Tokens a minter may mint a minute; 0: no limit.
    pub per_minute: u32,
    /// Days a record is kept past its token's expiry.
    pub retention_days: u32,
}

impl Default for LedgerPolicy {
    fn default() -> Self {
        Self {
            per_minute: DEFAULT_TOKENS_PER_MINUTE,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// A record written, so that it can be taken back when the token is not handed out after
/// all (provisioning failed): the ledger holds only tokens someone received.
#[derive(Debug, Clone)]
pub struct Recorded {
    keys: [Key; 2],
}

pub struct Ledger {
    store: Arc<dyn Store>,
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Records `issuance` and counts it against `minter`'s limit, in one store round trip.
    /// Over the limit: `TooManyRequests` saying when to retry; an `xid` already on record:
    /// `Conflict`. Either way nothing is recorded or counted (beyond the refused attempt's
    /// nothing). `now_ms`: the clock, in milliseconds.
    pub async fn record(
        &self,
        issuance: &Issuance,
        minter: Minter,
        policy: LedgerPolicy,
        now_ms: u64,
    ) -> Result<Recorded> {
        let now = now_ms / 1000;
        let window = now / WINDOW_SECS;
        let count = (policy.per_minute > 0).then(|| Count {
            key: keys::mints(&minter, window),
            max: u64::from(policy.per_minute),
            // Kept a window longer than it counts, so that a late TTL never matters.
            expires_at: (window + 2) * WINDOW_SECS,
        });
        let Ok(Value::Object(fields)) = serde_json::to_value(issuance) else {
            return Err(ChatError::internal("A ledger record could not be written."));
        };
        let keep_until = issuance
            .expires_at
            .saturating_add(u64::from(policy.retention_days) * DAY_SECS);
        let keys = [
            keys::issuance(&issuance.xid, &issuance.identity),
            keys::issued_to(&issuance.identity, now_ms, &issuance.xid),
        ];
        let doc = Stored {
            version: 1,
            fields,
            expires_at: Some(keep_until),
        };
        let docs = keys.iter().map(|k| (k.clone(), doc.clone())).collect();
        let counts: Vec<Count> = count.into_iter().collect();
        match self.store.create_counted(counts.clone(), docs).await? {
            Created::Done => Ok(Recorded { keys }),
            Created::Exists => {
                // Counted all the same: trying ids is not free.
                if !counts.is_empty() {
                    self.store.create_counted(counts, Vec::new()).await?;
                }
                Err(ChatError::conflict(
                    "This xid is already on record for this user; nothing was minted. Use a new xid.",
                ))
            }
            Created::OverLimit(_) => {
                let retry = ((window + 1) * WINDOW_SECS).saturating_sub(now).max(1);
                let whom = match minter {
                    Minter::Identity(_) => "this user",
                    Minter::Source(_) => "this client address",
                };
                crate::metrics::limited(crate::metrics::Limit::Mints);
                tracing::info!(
                    kind = issuance.kind.as_str(),
                    per_minute = policy.per_minute,
                    retry_after = retry,
                    "minting refused: over the limit"
                );
                Err(ChatError::too_many(
                    &format!(
                        "More than {} tokens a minute for {whom}; nothing was minted.",
                        policy.per_minute
                    ),
                    retry,
                ))
            }
        }
    }

    /// Takes back a record whose token was never handed out; a failure is logged (the
    /// record then stays, naming a token nobody received).
    pub async fn take_back(&self, recorded: Recorded) {
        for key in &recorded.keys {
            if let Err(err) = self.store.delete(key).await {
                tracing::warn!(error_type = %err.kind, reason = %err.message, "taking back a ledger record failed");
            }
        }
    }

    /// The record of `xid`, while it is kept: the one of `identity` when given, else the only
    /// one (`Conflict` when identities share the id: then the caller names one; adr/013).
    pub async fn get(&self, xid: &str, identity: Option<&str>) -> Result<Option<Issuance>> {
        check_xid(xid)?;
        let found = self
            .store
            .query(&keys::issuance_partition(xid), keys::ISSUANCE_PREFIX)
            .await?;
        let mut records: Vec<Issuance> =
            found.into_iter().map(parse_record).collect::<Result<_>>()?;
        if let Some(identity) = identity {
            records.retain(|r| r.identity == identity);
        }
        records.sort_by_key(|r| r.issued_at);
        let identities = records
            .iter()
            .map(|r| r.identity.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
        if identities > 1 {
            return Err(ChatError::conflict(
                "More than one user has a token on record under this xid; name the identity.",
            ));
        }
        Ok(records.pop())
    }

    /// An identity's records, newest first, at most `limit` ([`MAX_LIST`]).
    pub async fn of_identity(&self, identity: &str, limit: usize) -> Result<Vec<Issuance>> {
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(ChatError::bad_request(format!(
                "limit must be from 1 to {MAX_LIST}."
            )));
        }
        let found = self
            .store
            .latest(&identity_partition(identity), keys::ISSUED_PREFIX, limit)
            .await?;
        found.into_iter().map(parse_record).collect()
    }
}

fn parse_record(doc: Stored) -> Result<Issuance> {
    serde_json::from_value(Value::Object(doc.fields)).map_err(|e| {
        tracing::error!(error = %e, "a ledger record does not parse");
        ChatError::new(
            ErrorKind::InternalError,
            "A ledger record is damaged; see the logs.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_are_checked_and_made_unique() {
        for good in ["a", "order-17:retry_2.x", &"x".repeat(64)] {
            check_xid(good).unwrap();
        }
        for bad in ["", " a", "a b", "é", "a/b", &"x".repeat(65), "a#b"] {
            assert_eq!(
                check_xid(bad).unwrap_err().kind,
                ErrorKind::BadRequest,
                "{bad}"
            );
        }
        let (a, b) = (new_xid().unwrap(), new_xid().unwrap());
        assert_ne!(a, b);
        check_xid(&a).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4', "a version 4 UUID: {a}");
    }

    #[test]
    fn the_hash_is_sha256_in_lowercase_hex() {
        // FIPS 180-2's "abc" vector.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

/// Who a rate limit counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Minter {
    Identity(String),
    /// A client address (the dev token API, which takes no token).
    Source(String),
}

/// Where the ledger keeps its records (`tests/it/stored_format.rs` pins the strings).
pub mod keys {
    use super::Minter;
    use crate::store::{Key, identity_partition};

    /// The sort keys of an xid's ledger records, new and old.
    pub const ISSUANCE_PREFIX: &str = "ISSUANCE";
    pub const ISSUED_PREFIX: &str = "ISSUED#";

    pub fn issuance_partition(xid: &str) -> String {
        format!("ISSUANCE#{xid}")
    }

    /// A minted token's record, by its transaction id and its identity: an id is unique per
    /// identity, so that nobody can take another's id. Records written before share the
    /// partition with the sort key `ISSUANCE` alone.
    pub fn issuance(xid: &str, identity: &str) -> Key {
        Key::new(
            "issuance",
            issuance_partition(xid),
            format!("{ISSUANCE_PREFIX}#{identity}"),
        )
    }

    /// The same record under its identity, sorted by when it was minted (zero-padded, so
    /// that the sort keys order as the times do), so that one query lists the newest.
    pub fn issued_to(identity: &str, issued_at_ms: u64, xid: &str) -> Key {
        Key::new(
            "issued-to",
            identity_partition(identity),
            format!("{ISSUED_PREFIX}{issued_at_ms:015}#{xid}"),
        )
    }

    /// How many tokens one minter asked for in one minute (`window`: unix minutes).
    pub fn mints(minter: &Minter, window: u64) -> Key {
        let partition = match minter {
            Minter::Identity(identity) => identity_partition(identity),
            Minter::Source(address) => format!("SOURCE#{address}"),
        };
        Key::new("mints", partition, format!("MINTS#{window}"))
    }
}
