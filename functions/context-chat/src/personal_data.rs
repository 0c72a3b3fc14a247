//! What the product stores about a person, found, exported and erased (issue 35, GDPR
//! articles 15 and 17; adr/022). A person's records sit under their identity (ledger,
//! revocation, roles, senders' logs), under the contexts they were in (subscriptions,
//! access-log entries, digests), under their addresses and numbers (confirmations, phone
//! records, counters) and under their tokens' ids (the ledger by `xid`). Nothing lists a
//! store by value, so they are found from the identity outwards: its own partition, the
//! contexts its records, its memberships and its book name, the addresses its subscriptions
//! and logs name.
//!
//! Erasure deletes what serves only the person (subscriptions, addresses, numbers, codes,
//! digests, roles, counters) and keeps what is audit — the ledger and the access log — with
//! the identity replaced by a keyed hash (HMAC under a key derived from the link secret): the
//! records still say that someone minted a token or could read a room then, not who. The
//! revocation that keeps older tokens out stays as it is until it expires.

use std::collections::{BTreeMap, BTreeSet};

use aws_lc_rs::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::store::{Key, Store, Stored, context_partition, identity_partition};

/// One stored record about the person, as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub kind: &'static str,
    pub partition: String,
    pub sort: String,
    /// Unix seconds, when the store forgets it.
    pub expires_at: Option<u64>,
    pub fields: Map<String, Value>,
}

impl Record {
    fn key(&self) -> Key {
        Key::new(self.kind, self.partition.clone(), self.sort.clone())
    }
}

/// Everything found about one identity.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub identity: String,
    /// The rooms the identity is in at Twilio now.
    pub memberships: Vec<String>,
    pub records: Vec<Record>,
}

impl Found {
    /// Adds the records of `earlier` that this look did not find (by where they are kept).
    pub fn merge(&mut self, earlier: Found) {
        let known: BTreeSet<(String, String)> = self
            .records
            .iter()
            .map(|r| (r.partition.clone(), r.sort.clone()))
            .collect();
        self.records.extend(
            earlier
                .records
                .into_iter()
                .filter(|r| !known.contains(&(r.partition.clone(), r.sort.clone()))),
        );
    }
}

/// Keys the hashes that replace an erased identity: one key per deployment, derived from
/// the link secret as the confirmation codes' is, so that the same identity always hashes
/// the same (a second erasure finds nothing new) and nobody without the secret can tell
/// whose a record was by hashing candidates.
pub struct Pseudonyms(hmac::Key);

impl Pseudonyms {
    pub fn new(link_secret: &SecretString) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, link_secret.expose_secret().as_bytes());
        let derived = hmac::sign(&root, b"context-chat erased identity v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// `erased-` and 32 hex digits: still a valid identity, never one a platform gives.
    pub fn of(&self, identity: &str) -> String {
        let tag = hmac::sign(&self.0, identity.as_bytes());
        format!("erased-{}", hex::encode(&tag.as_ref()[..16]))
    }
}

/// The kind of a record, by where it lives.
fn kind_of(partition: &str, sort: &str) -> &'static str {
    let p = partition.split('#').next().unwrap_or_default();
    match (p, sort) {
        ("IDENTITY", "REVOKED") => "revocation",
        ("IDENTITY", "ROLES") => "roles",
        ("IDENTITY", "CONFIRMATIONS") => "emailSender",
        ("IDENTITY", "PHONES") => "phoneSender",
        ("IDENTITY", s) if s.starts_with("ISSUED#") => "ledger",
        ("IDENTITY", s) if s.starts_with("MINTS#") => "mintCounter",
        ("ISSUANCE", _) => "ledger",
        ("CHANNEL", s) if s.starts_with("SUB#") => "subscription",
        ("CHANNEL", s) if s.starts_with("SMS#") => "smsSubscription",
        ("CHANNEL", s) if s.starts_with("ACCESS#") => "accessLog",
        ("CHANNEL", s) if s.starts_with("DIGEST#") => "digest",
        ("EMAIL", s) if s.starts_with("IDENTITY#") => "emailConfirmation",
        ("EMAIL", "GUESSES") => "codeGuesses",
        ("EMAIL", "EMAIL") => "oldEmailConfirmation",
        ("PHONE", s) if s.starts_with("IDENTITY#") => "phone",
        ("PHONE", "STOPPED") => "smsStopped",
        ("PHONE", _) => "smsSpent",
        _ => "other",
    }
}

fn record(partition: &str, sort: String, doc: Stored) -> Record {
    Record {
        kind: kind_of(partition, &sort),
        partition: partition.to_owned(),
        sort,
        expires_at: doc.expires_at,
        fields: doc.fields,
    }
}

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(Value::as_str)
}

/// The strings a JSON value holds anywhere (addresses in senders' logs).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Finds every record about `identity`; `memberships` are its rooms at Twilio now.
pub async fn find(store: &dyn Store, identity: &str, memberships: Vec<String>) -> Result<Found> {
    let mut records = Vec::new();
    let own = identity_partition(identity);
    for (sort, doc) in store.query_keyed(&own, "").await? {
        records.push(record(&own, sort, doc));
    }
    // The contexts its records name.
    let mut contexts: BTreeSet<String> = memberships.iter().cloned().collect();
    let mut xids = BTreeSet::new();
    for r in &records {
        if r.kind == "ledger" {
            if let Some(Value::Array(named)) = r.fields.get("contexts") {
                contexts.extend(named.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            xids.extend(text(&r.fields, "xid").map(str::to_owned));
        }
        if r.kind == "roles"
            && let Some(Value::Object(roles)) = r.fields.get("roles")
        {
            contexts.extend(roles.keys().cloned());
        }
    }
    // Its ledger records by xid (new and old form).
    for xid in &xids {
        let partition = crate::ledger::keys::issuance_partition(xid);
        for (sort, doc) in store.query_keyed(&partition, "ISSUANCE").await? {
            if text(&doc.fields, "identity") == Some(identity) {
                records.push(record(&partition, sort, doc));
            }
        }
    }
    // Under each context: its subscriptions and access-log entries.
    let mut addresses: BTreeSet<String> = BTreeSet::new();
    for context in &contexts {
        let partition = context_partition(context);
        for prefix in ["SUB#", "SMS#"] {
            let sort = format!("{prefix}{identity}");
            for (found_sort, doc) in store.query_keyed(&partition, &sort).await? {
                if found_sort != sort {
                    continue;
                }
                let address = text(&doc.fields, "email").or_else(|| text(&doc.fields, "phone"));
                addresses.extend(address.map(str::to_owned));
                records.push(record(&partition, found_sort, doc));
            }
        }
        for (sort, doc) in store.query_keyed(&partition, "ACCESS#").await? {
            if text(&doc.fields, "identity") == Some(identity) {
                records.push(record(&partition, sort, doc));
            }
        }
    }
    // The addresses and numbers its senders' logs still name.
    for r in records
        .iter()
        .filter(|r| matches!(r.kind, "emailSender" | "phoneSender"))
    {
        let mut named = Vec::new();
        strings(&Value::Object(r.fields.clone()), &mut named);
        addresses.extend(
            named
                .into_iter()
                .filter(|s| s.contains('@') || s.starts_with('+')),
        );
    }
    // Under each address or number: this identity's record, and the address's own.
    for address in &addresses {
        let partition = match address.starts_with('+') {
            true => format!("PHONE#{address}"),
            false => format!("EMAIL#{address}"),
        };
        for (sort, doc) in store.query_keyed(&partition, "").await? {
            let others = sort.starts_with("IDENTITY#") && sort != format!("IDENTITY#{identity}");
            if !others {
                records.push(record(&partition, sort, doc));
            }
        }
        for context in &contexts {
            let partition = context_partition(context);
            let sort = format!("DIGEST#{address}");
            for (found, doc) in store.query_keyed(&partition, &sort).await? {
                if found == sort {
                    records.push(record(&partition, found, doc));
                }
            }
        }
    }
    Ok(Found {
        identity: identity.to_owned(),
        memberships,
        records,
    })
}

/// What an erasure did to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    pub deleted: usize,
    /// Ledger and access-log records kept under the hash.
    pub pseudonymized: usize,
    pub pseudonym: String,
}

/// Whether another identity still has a record under the address of `record`'s partition
/// (then the address's own records — counters, STOP — are theirs too and stay).
async fn shared(store: &dyn Store, partition: &str, identity: &str) -> Result<bool> {
    let own = format!("IDENTITY#{identity}");
    Ok(store
        .query_keyed(partition, "IDENTITY#")
        .await?
        .iter()
        .any(|(sort, _)| *sort != own))
}

/// Deletes what serves only the person and moves the audit records under the pseudonym.
pub async fn erase(store: &dyn Store, found: &Found, pseudonyms: &Pseudonyms) -> Result<Erased> {
    let identity = found.identity.as_str();
    let pseudonym = pseudonyms.of(identity);
    let mut erased = Erased {
        pseudonym: pseudonym.clone(),
        ..Erased::default()
    };
    let mut shared_addresses: BTreeMap<String, bool> = BTreeMap::new();
    for r in &found.records {
        match r.kind {
            // Keeps older tokens out until it expires.
            "revocation" => continue,
            "ledger" | "accessLog" => {
                let (partition, sort) = (
                    r.partition.replace(
                        &identity_partition(identity),
                        &identity_partition(&pseudonym),
                    ),
                    r.sort
                        .replace(&format!("#{identity}#"), &format!("#{pseudonym}#")),
                );
                let sort = match sort.strip_suffix(&format!("#{identity}")) {
                    Some(head) if r.partition.starts_with("ISSUANCE#") => {
                        format!("{head}#{pseudonym}")
                    }
                    _ => sort,
                };
                let mut fields = r.fields.clone();
                fields.insert("identity".into(), Value::String(pseudonym.clone()));
                let moved = Stored {
                    version: 1,
                    fields,
                    expires_at: r.expires_at,
                };
                store
                    .put(
                        &Key::new(r.kind, partition, sort),
                        moved,
                        crate::store::Expect::Anything,
                    )
                    .await?;
                store.delete(&r.key()).await?;
                erased.pseudonymized += 1;
            }
            "codeGuesses" | "oldEmailConfirmation" | "smsStopped" | "smsSpent" | "digest" => {
                let address_partition = match r.kind {
                    "digest" => {
                        let address = r.sort.trim_start_matches("DIGEST#");
                        match address.starts_with('+') {
                            true => format!("PHONE#{address}"),
                            false => format!("EMAIL#{address}"),
                        }
                    }
                    _ => r.partition.clone(),
                };
                let is_shared = match shared_addresses.get(&address_partition) {
                    Some(known) => *known,
                    None => {
                        let known = shared(store, &address_partition, identity).await?;
                        shared_addresses.insert(address_partition.clone(), known);
                        known
                    }
                };
                if !is_shared {
                    store.delete(&r.key()).await?;
                    erased.deleted += 1;
                }
            }
            _ => {
                store.delete(&r.key()).await?;
                erased.deleted += 1;
            }
        }
    }
    store.forget_deleted().await?;
    Ok(erased)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_identity_always_hashes_the_same_and_only_with_the_secret() {
        let a = Pseudonyms::new(&SecretString::from(
            "a-link-secret-for-tests-0123".to_owned(),
        ));
        let b = Pseudonyms::new(&SecretString::from(
            "another-link-secret-0123456".to_owned(),
        ));
        assert_eq!(a.of("alex"), a.of("alex"));
        assert_ne!(a.of("alex"), a.of("sam"));
        assert_ne!(a.of("alex"), b.of("alex"));
        assert!(a.of("alex").starts_with("erased-") && a.of("alex").len() == 39);
        assert!(crate::names::check_identity(&a.of("alex")).is_ok());
    }

    #[test]
    fn records_are_named_by_where_they_live() {
        assert_eq!(
            kind_of("IDENTITY#alex", "ISSUED#000000000000001#x"),
            "ledger"
        );
        assert_eq!(kind_of("CHANNEL#general", "SUB#alex"), "subscription");
        assert_eq!(
            kind_of("CHANNEL#general", "ACCESS#1#alex#joined"),
            "accessLog"
        );
        assert_eq!(
            kind_of("EMAIL#a@example.org", "IDENTITY#alex"),
            "emailConfirmation"
        );
        assert_eq!(kind_of("PHONE#+4915112345678", "SPENT#1#CODES"), "smsSpent");
    }
}
