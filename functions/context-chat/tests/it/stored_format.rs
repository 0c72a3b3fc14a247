//! Records already in DynamoDB tables and embedded stores read back after the features took
//! over their keys from the store: every key still names the partition and sort key written
//! before, and items written in today's format (the old integration's included) read back
//! through the features.

use std::sync::Arc;
use std::time::Duration;

use context_chat::ledger::{self, Ledger, Minter};
use context_chat::notifications::address::{Address, EmailAddress, PhoneNumber};
use context_chat::notifications::keys;
use context_chat::revocations::{self, Revocations};
use context_chat::sqlite_store::SqliteStore;
use context_chat::store::{Expect, Key, Store, Stored};
use serde_json::{Value, json};
use test_support::TempDir;

fn email() -> EmailAddress {
    EmailAddress::parse("alex@example.org").unwrap()
}

fn phone() -> PhoneNumber {
    PhoneNumber::parse("+14155550101").unwrap()
}

#[test]
fn every_key_names_the_partition_and_sort_key_written_before() {
    let cases: Vec<(Key, &str, &str)> = vec![
        (
            keys::subscription("general", "alex"),
            "CHANNEL#general",
            "SUB#alex",
        ),
        (
            keys::sms_subscription("general", "alex"),
            "CHANNEL#general",
            "SMS#alex",
        ),
        (
            keys::digest("general", &Address::Email(email())),
            "CHANNEL#general",
            "DIGEST#alex@example.org",
        ),
        (
            keys::digest("general", &Address::Phone(phone())),
            "CHANNEL#general",
            "DIGEST#+14155550101",
        ),
        (
            keys::old_confirmation(&email()),
            "EMAIL#alex@example.org",
            "EMAIL",
        ),
        (
            keys::confirmation(&email(), "alex"),
            "EMAIL#alex@example.org",
            "IDENTITY#alex",
        ),
        (keys::guesses(&email()), "EMAIL#alex@example.org", "GUESSES"),
        (keys::email_sender("alex"), "IDENTITY#alex", "CONFIRMATIONS"),
        (
            keys::phone(&phone(), "alex"),
            "PHONE#+14155550101",
            "IDENTITY#alex",
        ),
        (keys::phone_sender("alex"), "IDENTITY#alex", "PHONES"),
        (keys::sms_stopped(&phone()), "PHONE#+14155550101", "STOPPED"),
        (
            keys::sms_spent("CODES", 20_000, None),
            "SMSBUDGET#20000",
            "CODES",
        ),
        (
            keys::sms_spent("TEXTS", 20_000, Some(&phone())),
            "PHONE#+14155550101",
            "SPENT#20000#TEXTS",
        ),
        (revocations::key("alex"), "IDENTITY#alex", "REVOKED"),
        (
            ledger::keys::issuance("x1", "alex"),
            "ISSUANCE#x1",
            "ISSUANCE#alex",
        ),
        (
            ledger::keys::issued_to("alex", 1_700_000_000_123, "x1"),
            "IDENTITY#alex",
            "ISSUED#001700000000123#x1",
        ),
        (
            ledger::keys::mints(&Minter::Identity("alex".into()), 28_333_333),
            "IDENTITY#alex",
            "MINTS#28333333",
        ),
        (
            ledger::keys::mints(&Minter::Source("203.0.113.7".into()), 28_333_333),
            "SOURCE#203.0.113.7",
            "MINTS#28333333",
        ),
    ];
    for (key, partition, sort) in cases {
        assert_eq!((key.partition(), key.sort()), (partition, sort), "{key:?}");
    }
}

#[test]
fn a_keys_debug_form_shows_neither_address_nor_identity() {
    let shown = format!("{:?}", keys::confirmation(&email(), "alex"));
    assert!(!shown.contains("alex"), "{shown}");
    assert!(shown.starts_with("Key(confirmation "), "{shown}");
}

/// Puts `fields` under the literal strings, as an older release left them.
async fn put_raw(store: &dyn Store, partition: &str, sort: &str, fields: Value) {
    let Value::Object(fields) = fields else {
        panic!("fields must be an object")
    };
    let key = Key::new("raw", partition.to_owned(), sort);
    let doc = Stored {
        version: 1,
        fields,
        expires_at: None,
    };
    assert!(store.put(&key, doc, Expect::Absent).await.unwrap());
}

#[tokio::test]
async fn records_written_in_todays_format_read_back_through_the_features() {
    let dir = TempDir::new("stored-format");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    // The old integration's subscription (no perIdentity), and today's.
    for (partition, sort, fields) in [
        (
            "CHANNEL#general",
            "SUB#alex",
            json!({"channel": "general", "identity": "alex", "email": "alex@example.org", "createdAt": 1_700_000_000u64}),
        ),
        (
            "CHANNEL#general",
            "SUB#sam",
            json!({"channel": "general", "identity": "sam", "email": "sam@example.org", "createdAt": 1_700_000_001u64, "perIdentity": true}),
        ),
        (
            "CHANNEL#general",
            "SMS#alex",
            json!({"context": "general", "identity": "alex", "phone": "+14155550101", "createdAt": 1_700_000_002u64}),
        ),
    ] {
        put_raw(&*store, partition, sort, fields).await;
    }
    let mut emails = keys::subscriptions(&*store, "general").await.unwrap();
    emails.sort_by(|a, b| a.identity.cmp(&b.identity));
    let read: Vec<(&str, &str, bool)> = emails
        .iter()
        .map(|s| (s.identity.as_str(), s.email.as_str(), s.per_identity))
        .collect();
    assert_eq!(
        read,
        [
            ("alex", "alex@example.org", false),
            ("sam", "sam@example.org", true)
        ]
    );
    let texts = keys::sms_subscriptions(&*store, "general").await.unwrap();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].phone, phone());

    // A revocation as revokeIdentity wrote it before syncs were recorded: older tokens of
    // alex are refused, and the record says since when.
    put_raw(
        &*store,
        "IDENTITY#alex",
        "REVOKED",
        json!({"identity": "alex", "revokedBefore": 1_700_000_100u64}),
    )
    .await;
    let revocations = Revocations::new(store.clone(), Duration::ZERO);
    let access = revocations.fresh("alex").await.unwrap().unwrap();
    assert_eq!(access.revoked_before, Some(1_700_000_100));

    // A ledger record under today's two keys, found by its xid and under its identity.
    let issuance = json!({
        "xid": "x1", "kind": "twilio-chat", "identity": "alex", "contexts": ["general"],
        "issuedAt": 1_700_000_000u64, "tokenExpiresAt": 1_700_003_600u64,
        "tokenSha256": "ab".repeat(32),
    });
    put_raw(&*store, "ISSUANCE#x1", "ISSUANCE#alex", issuance.clone()).await;
    put_raw(
        &*store,
        "IDENTITY#alex",
        "ISSUED#001700000000000#x1",
        issuance,
    )
    .await;
    let ledger = Ledger::new(store.clone());
    let found = ledger.get("x1", Some("alex")).await.unwrap().unwrap();
    assert_eq!(
        (found.identity.as_str(), found.contexts.as_slice()),
        ("alex", &["general".to_owned()][..])
    );
    let listed = ledger.of_identity("alex", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].xid, "x1");
}
