//! The store port, shared by the features (ledger, revocations, notifications): versioned JSON
//! documents under a partition and sort key, written only
//! when the version the writer read is still there. Every read-modify-write of the
//! notifications (code attempts, digests) is an optimistic loop over [`Store::put`], so
//! two requests that race never both win; the implementations only need a conditional put.

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::address::{EmailAddress, PhoneNumber};
use crate::error::{ChatError, Result};

/// Where a document lives: a partition, a sort key inside it, and what kind of record it is
/// (for logs). The store knows no feature: each feature makes its own keys (`ledger::keys`,
/// `notifications::keys`, `revocations`), from the shared partitions below.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    kind: &'static str,
    partition: String,
    sort: String,
}

impl Key {
    pub fn new(kind: &'static str, partition: String, sort: impl Into<String>) -> Key {
        Key {
            kind,
            partition,
            sort: sort.into(),
        }
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn sort(&self) -> &str {
        &self.sort
    }

    /// What kind of record, for logs: a key's strings hold addresses, numbers and
    /// identities, which no log line may (adr/016).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The first 12 hex digits of the key's SHA-256: tells log lines about one record apart
    /// (and an operator who knows the key can find it), without the key.
    pub fn fingerprint(&self) -> String {
        let whole = format!("{}\n{}", self.partition, self.sort);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, whole.as_bytes());
        hex::encode(&digest.as_ref()[..6])
    }
}

/// The kind and fingerprint only: the strings hold addresses and identities.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} {})", self.kind, self.fingerprint())
    }
}

/// The partitions features share, by what they are about. Subscriptions and digests of a
/// context share its partition, so that one query finds a context's subscribers; the
/// strings keep the old integration's word, `CHANNEL#`, so that existing tables keep working.
pub fn context_partition(context: &str) -> String {
    format!("CHANNEL#{context}")
}

pub fn identity_partition(identity: &str) -> String {
    format!("IDENTITY#{identity}")
}

pub fn email_partition(email: &EmailAddress) -> String {
    format!("EMAIL#{email}")
}

pub fn phone_partition(phone: &PhoneNumber) -> String {
    format!("PHONE#{}", phone.as_str())
}

/// A document as stored: its fields, the version that guards it, and when the store may
/// forget it (DynamoDB's TTL; the embedded store drops it on read).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub version: u64,
    pub fields: serde_json::Map<String, Value>,
    pub expires_at: Option<u64>,
}

/// What a put requires of the document already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No document (or one past its expiry).
    Absent,
    /// The document at this version.
    Version(u64),
    /// Anything: last writer wins.
    Anything,
}

/// A counter that [`Store::create_counted`] adds one to, unless it has reached `max`.
/// Its key names its window (a minute, a day), so that a window's count is never reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub key: Key,
    pub max: u64,
    /// When the store may forget the counter.
    pub expires_at: u64,
}

/// The field a counter keeps its count in.
pub const COUNT_FIELD: &str = "n";

/// What [`Store::create_counted`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Every document written and the counter counted.
    Done,
    /// The counter at this index of `counts` was at its maximum: nothing written, nothing
    /// counted.
    OverLimit(usize),
    /// A document was already there: nothing written, nothing counted.
    Exists,
}

/// A storage backend: DynamoDB (`aws-ports`), the embedded file store, or a test's.
pub trait Store: Send + Sync {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Stored>>>;

    /// Writes `doc` when `expect` holds; `Ok(false)` when it did not (someone else wrote).
    fn put<'a>(&'a self, key: &'a Key, doc: Stored, expect: Expect) -> BoxFuture<'a, Result<bool>>;

    /// Removes a document; absent is fine.
    fn delete<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<()>>;

    /// Every live document in `partition` whose sort key starts with `sort_prefix`.
    fn query<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Stored>>>;

    /// Writes every document of `docs`, each of which must be absent, and adds one to each
    /// of `counts` unless one has reached its maximum: all of it or none of it, in one
    /// round trip (a DynamoDB transaction; one SQLite transaction).
    fn create_counted<'a>(
        &'a self,
        counts: Vec<Count>,
        docs: Vec<(Key, Stored)>,
    ) -> BoxFuture<'a, Result<Created>>;

    /// After an erasure: makes sure no copy of deleted records is left behind where the store
    /// keeps them (the embedded store's write-ahead log). DynamoDB keeps none to clear.
    fn forget_deleted(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// As [`Store::query`], each document with its sort key: what export and erasure need to
    /// name, remove or move records they did not write.
    fn query_keyed<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Stored)>>> {
        let _ = (partition, sort_prefix);
        Box::pin(async { Err(ChatError::internal("This store cannot list keys.")) })
    }

    /// The live documents of `partition` whose sort key starts with `sort_prefix`, the
    /// greatest sort key first, at most `limit` of them.
    fn latest<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>>>;
}

/// A typed document and the version it was read at.
#[derive(Debug, Clone)]
pub struct Document<T> {
    pub version: u64,
    pub value: T,
}

/// Reads a typed document. One that no longer parses is a bug or a manual edit: an
/// internal error, never silently replaced.
pub async fn read<T: DeserializeOwned>(
    store: &dyn Store,
    key: &Key,
) -> Result<Option<Document<T>>> {
    let Some(stored) = store.get(key).await? else {
        return Ok(None);
    };
    let value = serde_json::from_value(Value::Object(stored.fields)).map_err(|e| {
        tracing::error!(key_kind = key.kind(), key = %key.fingerprint(), error = %without_strings(&e.to_string()), "a stored document does not parse");
        ChatError::internal("A stored record is damaged; see the logs.")
    })?;
    Ok(Some(Document {
        version: stored.version,
        value,
    }))
}

/// A message with its quoted strings cut out: serde names the value it did not expect, and a
/// stored value may be an address or a number.
pub(crate) fn without_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Writes `value` as the successor of `previous` (or as a new document).
pub async fn write<T: Serialize>(
    store: &dyn Store,
    key: &Key,
    previous: Option<u64>,
    value: &T,
    expires_at: Option<u64>,
) -> Result<bool> {
    let Ok(Value::Object(fields)) = serde_json::to_value(value) else {
        return Err(ChatError::internal("A record could not be written."));
    };
    let (version, expect) = match previous {
        Some(v) => (v + 1, Expect::Version(v)),
        None => (1, Expect::Absent),
    };
    store
        .put(
            key,
            Stored {
                version,
                fields,
                expires_at,
            },
            expect,
        )
        .await
}

/// Writes `value` whatever is there: last writer wins.
pub async fn write_over<T: Serialize>(store: &dyn Store, key: &Key, value: &T) -> Result<()> {
    let Ok(Value::Object(fields)) = serde_json::to_value(value) else {
        return Err(ChatError::internal("A record could not be written."));
    };
    store
        .put(
            key,
            Stored {
                version: 1,
                fields,
                expires_at: None,
            },
            Expect::Anything,
        )
        .await
        .map(|_| ())
}

/// How often an optimistic update retries after losing a race before giving up.
pub const MAX_RACES: u32 = 8;

/// Read, change, write-if-unchanged, until it sticks. `change` sees the current value (or
/// `None`) and returns the new one (or `None` to write nothing) plus its result.
pub async fn update<T, R, F>(store: &dyn Store, key: &Key, mut change: F) -> Result<R>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<&T>) -> Result<(Option<(T, Option<u64>)>, R)>,
{
    for _ in 0..MAX_RACES {
        let current = read::<T>(store, key).await?;
        let (next, result) = change(current.as_ref().map(|d| &d.value))?;
        let Some((next, expires_at)) = next else {
            return Ok(result);
        };
        if write(store, key, current.map(|d| d.version), &next, expires_at).await? {
            return Ok(result);
        }
    }
    tracing::warn!(key_kind = key.kind(), key = %key.fingerprint(), "gave up after losing {MAX_RACES} races");
    Err(ChatError::new(
        crate::error::ErrorKind::Conflict,
        "Too many changes at once to this record; try again.",
    ))
}
