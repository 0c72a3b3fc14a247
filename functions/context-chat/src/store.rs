//! The store port, shared by the features (notifications, revocations): versioned JSON
//! documents under a partition and sort key, written only
//! when the version the writer read is still there. Every read-modify-write of the
//! notifications (code attempts, digests) is an optimistic loop over [`Store::put`], so
//! two requests that race never both win; the implementations only need a conditional put.

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::address::{Address, EmailAddress, PhoneNumber};
use crate::error::{ChatError, Result};

/// Where a document lives. Subscriptions and digests of a context share its partition, so
/// one query finds a context's subscribers. The key strings keep the old integration's
/// word, `CHANNEL#`, so that existing tables keep working.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// One identity's subscription to a context.
    Subscription { context: String, identity: String },
    /// An address as the old integration confirmed it, for anyone: read only, to honour
    /// the subscriptions made before confirmation became per identity.
    Email(EmailAddress),
    /// One identity's confirmation of one address, and its pending code.
    Confirmation {
        email: EmailAddress,
        identity: String,
    },
    /// Tries of codes for an address made without a token, counted apart so that they
    /// never use up the tries of the identity that asked for the code.
    Guesses(EmailAddress),
    /// One identity's confirmation emails: how many lately, which addresses wait.
    Sender(String),
    /// What is waiting to be sent to one address about one context, and when it last was.
    Digest { context: String, address: Address },
    /// One identity's text-message subscription to a context.
    SmsSubscription { context: String, identity: String },
    /// One identity's verification of one phone number, under the number, so that one
    /// query finds every identity that verified it (a STOP ends them all).
    Phone {
        phone: PhoneNumber,
        identity: String,
    },
    /// One identity's phone verifications: how many codes went out today, which numbers wait.
    PhoneSender(String),
    /// Context tokens for the identity issued before a time are refused (`revokeIdentity`).
    Revocation(String),
    /// A minted token's ledger record, by its transaction id and its identity: an id is
    /// unique per identity, so that nobody can take another's id (issue 30, L1). Records
    /// written before share the partition with the sort key `ISSUANCE` alone.
    Issuance { xid: String, identity: String },
    /// The same record under its identity, sorted by when it was minted, so that one
    /// query lists an identity's newest.
    IssuedTo {
        identity: String,
        issued_at_ms: u64,
        xid: String,
    },
    /// How many tokens one minter asked for in one minute (`window`: unix minutes).
    Mints { minter: Minter, window: u64 },
    /// The number replied STOP and has not texted START since: no code goes to it.
    SmsStopped(PhoneNumber),
    /// Codes or texts sent on one UTC day (`day`: unix days), by the whole deployment
    /// (`number: None`) or to one number (`notifications::budget`).
    SmsSpent {
        /// `CODES` or `TEXTS` (`notifications::budget::Spending`).
        what: &'static str,
        day: u64,
        number: Option<PhoneNumber>,
    },
}

/// Who a rate limit counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Minter {
    Identity(String),
    /// A client address (the dev token API, which takes no token).
    Source(String),
}

pub const SUBSCRIPTION_PREFIX: &str = "SUB#";
pub const SMS_SUBSCRIPTION_PREFIX: &str = "SMS#";

impl Key {
    pub fn partition(&self) -> String {
        match self {
            Key::Subscription { context, .. }
            | Key::SmsSubscription { context, .. }
            | Key::Digest { context, .. } => context_partition(context),
            Key::Phone { phone, .. } | Key::SmsStopped(phone) => phone_partition(phone),
            Key::Email(email) | Key::Confirmation { email, .. } | Key::Guesses(email) => {
                email_partition(email)
            }
            Key::Sender(identity)
            | Key::PhoneSender(identity)
            | Key::Revocation(identity)
            | Key::IssuedTo { identity, .. }
            | Key::Mints {
                minter: Minter::Identity(identity),
                ..
            } => identity_partition(identity),
            Key::Issuance { xid, .. } => issuance_partition(xid),
            Key::Mints {
                minter: Minter::Source(address),
                ..
            } => format!("SOURCE#{address}"),
            Key::SmsSpent {
                number: Some(phone),
                ..
            } => phone_partition(phone),
            Key::SmsSpent {
                number: None, day, ..
            } => format!("SMSBUDGET#{day}"),
        }
    }

    /// What kind of record, for logs: a key's strings hold addresses, numbers and
    /// identities, which no log line may (adr/016).
    pub fn kind(&self) -> &'static str {
        match self {
            Key::Subscription { .. } => "subscription",
            Key::Email(_) => "email",
            Key::Confirmation { .. } => "confirmation",
            Key::Guesses(_) => "guesses",
            Key::Sender(_) => "sender",
            Key::Digest { .. } => "digest",
            Key::SmsSubscription { .. } => "sms-subscription",
            Key::Phone { .. } => "phone",
            Key::PhoneSender(_) => "phone-sender",
            Key::Revocation(_) => "access",
            Key::Issuance { .. } => "issuance",
            Key::IssuedTo { .. } => "issued-to",
            Key::Mints { .. } => "mints",
            Key::SmsSpent { .. } => "sms-spent",
            Key::SmsStopped(_) => "sms-stopped",
        }
    }

    /// The first 12 hex digits of the key's SHA-256: tells log lines about one record apart
    /// (and an operator who knows the key can find it), without the key.
    pub fn fingerprint(&self) -> String {
        let whole = format!("{}\n{}", self.partition(), self.sort());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, whole.as_bytes());
        hex::encode(&digest.as_ref()[..6])
    }

    pub fn sort(&self) -> String {
        match self {
            Key::Subscription { identity, .. } => format!("{SUBSCRIPTION_PREFIX}{identity}"),
            Key::SmsSubscription { identity, .. } => format!("{SMS_SUBSCRIPTION_PREFIX}{identity}"),
            Key::Phone { identity, .. } => format!("{CONFIRMATION_PREFIX}{identity}"),
            Key::PhoneSender(_) => "PHONES".into(),
            Key::SmsStopped(_) => "STOPPED".into(),
            Key::Email(_) => "EMAIL".into(),
            Key::Confirmation { identity, .. } => format!("{CONFIRMATION_PREFIX}{identity}"),
            Key::Guesses(_) => "GUESSES".into(),
            Key::Sender(_) => "CONFIRMATIONS".into(),
            Key::Digest { address, .. } => format!("DIGEST#{}", address.as_str()),
            Key::Revocation(_) => "REVOKED".into(),
            Key::Issuance { identity, .. } => format!("{ISSUANCE_PREFIX}#{identity}"),
            // Zero-padded, so that the sort keys order as the times do.
            Key::IssuedTo {
                issued_at_ms, xid, ..
            } => format!("{ISSUED_PREFIX}{issued_at_ms:015}#{xid}"),
            Key::Mints { window, .. } => format!("MINTS#{window}"),
            Key::SmsSpent {
                what, number: None, ..
            } => (*what).to_owned(),
            Key::SmsSpent {
                what,
                day,
                number: Some(_),
            } => format!("SPENT#{day}#{what}"),
        }
    }
}

pub const CONFIRMATION_PREFIX: &str = "IDENTITY#";
/// The sort keys of an xid's ledger records, new and old.
pub const ISSUANCE_PREFIX: &str = "ISSUANCE";

pub fn issuance_partition(xid: &str) -> String {
    format!("ISSUANCE#{xid}")
}
pub const ISSUED_PREFIX: &str = "ISSUED#";

pub fn identity_partition(identity: &str) -> String {
    format!("IDENTITY#{identity}")
}

pub fn context_partition(context: &str) -> String {
    format!("CHANNEL#{context}")
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

    /// The live documents of `partition` whose sort key starts with `sort_prefix`, the
    /// greatest sort key first, at most `limit` of them.
    fn latest<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>>>;

    /// Every email subscription to `context`.
    fn subscriptions<'a>(&'a self, context: &'a str) -> BoxFuture<'a, Result<Vec<Subscription>>> {
        Box::pin(async move { parsed(self, context, SUBSCRIPTION_PREFIX).await })
    }

    /// Every text-message subscription to `context`.
    fn sms_subscriptions<'a>(
        &'a self,
        context: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SmsSubscription>>> {
        Box::pin(async move { parsed(self, context, SMS_SUBSCRIPTION_PREFIX).await })
    }
}

/// The documents of a context's partition under `prefix` that parse as `T`.
async fn parsed<S: Store + ?Sized, T: DeserializeOwned>(
    store: &S,
    context: &str,
    prefix: &str,
) -> Result<Vec<T>> {
    Ok(store
        .query(&context_partition(context), prefix)
        .await?
        .into_iter()
        .filter_map(|doc| {
            serde_json::from_value(Value::Object(doc.fields))
                .inspect_err(|e| tracing::warn!(context, error = %e, "skipping a subscription that does not parse"))
                .ok()
        })
        .collect())
}

/// One identity's text messages about one context, to a number it verified (or is verifying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsSubscription {
    pub context: String,
    pub identity: String,
    pub phone: PhoneNumber,
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Stored as `channel`, the old integration's word.
    #[serde(rename = "channel")]
    pub context: String,
    pub identity: String,
    pub email: EmailAddress,
    pub created_at: u64,
    /// Made since confirmation is per identity. Without it (the old integration's), an
    /// address anyone confirmed counts, as it did then.
    #[serde(default)]
    pub per_identity: bool,
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
fn without_strings(message: &str) -> String {
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
        return Err(ChatError::internal(
            "A notification record could not be written.",
        ));
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
        return Err(ChatError::internal(
            "A notification record could not be written.",
        ));
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
