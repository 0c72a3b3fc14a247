//! The token ledger and the minting limit on both real stores: DynamoDB through the AWS SDK
//! against moto (one `TransactWriteItems` of conditional puts and a conditional counter
//! update) and the embedded SQLite store. The same contract holds on each; the items as
//! stored carry the TTL attribute and never the token.

use std::sync::Arc;

use aws_ports::{DynamoStore, create_table};
use aws_sdk_dynamodb::types::AttributeValue;
use context_chat::context_token::now_unix;
use context_chat::ledger::Minter;
use context_chat::ledger::{Issuance, Kind, Ledger, LedgerPolicy, sha256_hex};
use context_chat::notifications::sqlite_store::SqliteStore;
use context_chat::store::Store;
use context_chat::{ErrorKind, Result};
use test_support::{Moto, unique};

const LIMIT: u32 = 20;

fn issuance(xid: &str, identity: &str, token: &str, expires_at: u64) -> Issuance {
    Issuance::of(
        Kind::TwilioChat,
        xid.to_owned(),
        identity,
        &["general".to_owned(), "SHIPMENT-42".to_owned()],
        Some("browser-1"),
        token,
        expires_at - 3600,
        expires_at,
    )
}

fn policy() -> LedgerPolicy {
    LedgerPolicy {
        per_minute: LIMIT,
        retention_days: 30,
    }
}

/// Records a twilio-chat token for `who` at `at` (ms), counted against `who`.
async fn record(
    ledger: &Ledger,
    xid: &str,
    who: &str,
    token: &str,
    at: u64,
    expires: u64,
) -> Result<context_chat::ledger::Recorded> {
    ledger
        .record(
            &issuance(xid, who, token, expires),
            Minter::Identity(who.to_owned()),
            policy(),
            at,
        )
        .await
}

/// What every store must do for the ledger. Returns the tokens it recorded (their hashes
/// are on record; the strings must not be).
async fn contract(store: Arc<dyn Store>, tag: &str) -> Vec<String> {
    let ledger = Ledger::new(store);
    let (alex, sam) = (
        unique(&format!("alex-{tag}")),
        unique(&format!("sam-{tag}")),
    );
    // Five seconds into the current minute, so that the first 21 mints share one window.
    let t0 = (now_unix() / 60 * 60 + 5) * 1000;
    let expires = now_unix() + 3600;
    let mut tokens = Vec::new();
    let mint = |n: usize, who: &str| {
        (
            unique(&format!("xid-{tag}-{n}")),
            format!("token-{who}-{n}-{}", unique("secret")),
        )
    };
    let mut alex_xids = Vec::new();
    for n in 0..LIMIT as usize {
        let (xid, token) = mint(n, &alex);
        record(&ledger, &xid, &alex, &token, t0 + n as u64, expires)
            .await
            .unwrap();
        tokens.push(token);
        alex_xids.push(xid);
    }
    // The 21st in the minute: refused, with when to retry, and not on record.
    let (xid21, token21) = mint(21, &alex);
    let refused = record(&ledger, &xid21, &alex, &token21, t0 + 30, expires)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::TooManyRequests, "{refused:?}");
    assert_eq!(refused.retry_after_secs, Some(55), "{refused:?}");
    assert!(refused.message.contains("55 s"), "{}", refused.message);
    assert_eq!(ledger.get(&xid21, None).await.unwrap(), None);
    // Another identity is unaffected.
    let (xid_sam, token_sam) = mint(1, &sam);
    record(&ledger, &xid_sam, &sam, &token_sam, t0 + 31, expires)
        .await
        .unwrap();
    tokens.push(token_sam.clone());
    // A reused xid: Conflict, the first record unchanged, and the try counted (L1).
    let reused = record(&ledger, &xid_sam, &sam, "another-token", t0 + 32, expires)
        .await
        .unwrap_err();
    assert_eq!(reused.kind, ErrorKind::Conflict, "{reused:?}");
    let kept = ledger.get(&xid_sam, None).await.unwrap().unwrap();
    assert_eq!(kept.token_sha256, sha256_hex(&token_sam));
    for n in 2..LIMIT as usize {
        let (xid, token) = mint(n, &sam);
        record(&ledger, &xid, &sam, &token, t0 + 40 + n as u64, expires)
            .await
            .unwrap_or_else(|e| panic!("sam's mint {n}: {e:?}"));
        tokens.push(token);
    }
    let (xid, token) = mint(LIMIT as usize, &sam);
    let refused = record(&ledger, &xid, &sam, &token, t0 + 59, expires)
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind,
        ErrorKind::TooManyRequests,
        "the conflict counted"
    );
    // The next minute: alex mints again.
    let (xid_next, token_next) = mint(22, &alex);
    record(&ledger, &xid_next, &alex, &token_next, t0 + 60_000, expires)
        .await
        .unwrap();
    tokens.push(token_next);
    // The record: what was minted, the token's hash, never the token.
    let found = ledger.get(&xid_next, None).await.unwrap().unwrap();
    assert_eq!(
        found,
        issuance(&xid_next, &alex, &tokens[tokens.len() - 1], expires)
    );
    assert_eq!(found.token_sha256.len(), 64);
    // An identity's newest first, as many as asked.
    let newest = ledger.of_identity(&alex, 3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].xid, xid_next);
    assert_eq!(newest[1].xid, alex_xids[19], "{newest:?}");
    assert_eq!(newest[2].xid, alex_xids[18], "{newest:?}");
    assert_eq!(
        ledger.of_identity(&alex, 100).await.unwrap().len(),
        LIMIT as usize + 1
    );
    assert_eq!(
        ledger.of_identity(&unique("nobody"), 100).await.unwrap(),
        vec![]
    );
    assert_eq!(ledger.get(&unique("unknown"), None).await.unwrap(), None);

    // Kept only the retention past expiry: a record whose time is up is not read, even
    // while the table's TTL has not removed it yet.
    let old = Issuance {
        issued_at: now_unix() - 40 * 86_400,
        expires_at: now_unix() - 40 * 86_400 + 3600,
        ..issuance(&unique("old"), &alex, "old-token", expires)
    };
    record_now(&ledger, &old).await;
    assert_eq!(ledger.get(&old.xid, None).await.unwrap(), None);
    // Its xid is free again.
    let again = Issuance {
        xid: old.xid.clone(),
        ..issuance(&old.xid, &alex, "new-token", expires)
    };
    record_now(&ledger, &again).await;

    // A record taken back (provisioning failed after it) is gone, and its xid free.
    let (xid_back, token_back) = mint(99, &sam);
    let unlimited = LedgerPolicy {
        per_minute: 0,
        ..policy()
    };
    let taken = ledger
        .record(
            &issuance(&xid_back, &sam, &token_back, expires),
            Minter::Identity(sam.clone()),
            unlimited,
            t0 + 50,
        )
        .await
        .unwrap();
    ledger.take_back(taken).await;
    assert_eq!(ledger.get(&xid_back, None).await.unwrap(), None);
    assert!(
        ledger
            .of_identity(&sam, 100)
            .await
            .unwrap()
            .iter()
            .all(|i| i.xid != xid_back)
    );
    tokens
}

fn no_token_in(haystack: &str, tokens: &[String]) {
    for token in tokens {
        assert!(
            !haystack.contains(token.as_str()),
            "a token string is stored"
        );
        assert!(
            haystack.contains(&sha256_hex(token)),
            "a token's hash is not stored"
        );
    }
}

/// Records `issuance` now, minted by someone new (no limit in the way).
async fn record_now(ledger: &Ledger, issuance: &Issuance) {
    let someone = Minter::Identity(unique("someone"));
    let recorded = ledger.record(issuance, someone, policy(), now_unix() * 1000);
    recorded.await.unwrap();
}

#[tokio::test]
async fn the_ledger_and_the_limit_on_dynamodb() {
    let moto = Moto::start();
    let client = moto.dynamodb().await;
    let table = unique("ledger");
    create_table(&client, &table).await.unwrap();
    let store = Arc::new(DynamoStore::new(client.clone(), table.clone()));
    let tokens = contract(store, "dynamo").await;

    let items = test_support::scan(&client, &table).await;
    let text = format!("{items:?}");
    no_token_in(&text, &tokens);
    let now = now_unix();
    for item in &items {
        let Some(AttributeValue::N(ttl)) = item.get("expiresAt") else {
            panic!("an item without the TTL attribute: {item:?}");
        };
        let ttl: u64 = ttl.parse().unwrap();
        let sk = match item.get("sk") {
            Some(AttributeValue::S(sk)) => sk.as_str(),
            _ => panic!("no sort key"),
        };
        if sk.starts_with("MINTS#") {
            // A counter goes two minutes after its window began.
            assert!(ttl <= now + 180, "{item:?}");
            assert!(
                matches!(item.get("n"), Some(AttributeValue::N(n)) if n.parse::<u32>().unwrap() <= LIMIT)
            );
        } else if ttl > now {
            // A live record goes 30 days after its token expires.
            let token_expires: u64 = match item.get("tokenExpiresAt") {
                Some(AttributeValue::N(n)) => n.parse().unwrap(),
                _ => panic!("a record without its token's expiry: {item:?}"),
            };
            assert_eq!(ttl, token_expires + 30 * 86_400, "{item:?}");
        }
    }
}

#[tokio::test]
async fn the_ledger_and_the_limit_on_the_embedded_store() {
    let dir = std::env::temp_dir().join(unique("ledger-sqlite"));
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let tokens = contract(store.clone(), "sqlite").await;
    // Every byte the store wrote, database and write-ahead log.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    no_token_in(&String::from_utf8_lossy(&bytes), &tokens);
    std::fs::remove_dir_all(&dir).ok();
}

/// Concurrent mints from 40 tasks, each with its own connection to one embedded store (as
/// processes share it): exactly the limit gets through, and each one that did is on record.
/// On the embedded store because its transactions are really serialised; moto's server runs
/// concurrent transactions without DynamoDB's per-item isolation (it let 22 of 40 through
/// here), so it cannot show this of DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mints_never_pass_the_limit() -> Result<()> {
    let dir = std::env::temp_dir().join(unique("ledger-race"));
    SqliteStore::open(&dir)?;
    let identity = unique("racer");
    let expires = now_unix() + 3600;
    let t0 = (now_unix() / 60 * 60 + 5) * 1000;
    let attempts = (0..40).map(|n| {
        let ledger = Ledger::new(Arc::new(SqliteStore::open(&dir).unwrap()));
        let identity = identity.clone();
        tokio::spawn(async move {
            let xid = format!("race-{n}");
            let result = ledger
                .record(
                    &issuance(&xid, &identity, &format!("t{n}"), expires),
                    Minter::Identity(identity.clone()),
                    policy(),
                    t0,
                )
                .await;
            (xid, result)
        })
    });
    let mut passed = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        let (_, result) = attempt.await.unwrap();
        match result {
            Ok(_) => passed += 1,
            Err(err) => assert_eq!(err.kind, ErrorKind::TooManyRequests, "{err:?}"),
        }
    }
    assert_eq!(passed, LIMIT as usize);
    let ledger = Ledger::new(Arc::new(SqliteStore::open(&dir)?));
    assert_eq!(ledger.of_identity(&identity, 100).await?.len(), passed);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// L1: an xid is unique per identity. Another identity's use of it is no conflict (so that
/// nobody can take, or probe, another's id); the same identity's is, and counts against its
/// limit; `tokenIssuance` by xid alone says to name the identity where two used it.
#[tokio::test]
async fn an_xid_is_unique_per_identity_and_a_conflict_counts() {
    let moto = Moto::start();
    let table = unique("ledger-l1");
    let dynamodb = moto.dynamodb().await;
    create_table(&dynamodb, &table).await.unwrap();
    let ledger = Ledger::new(Arc::new(DynamoStore::new(dynamodb, table)));
    let (alex, sam) = (unique("alex"), unique("sam"));
    let t0 = (now_unix() / 60 * 60 + 5) * 1000;
    let expires = now_unix() + 3600;
    // A predictable id: sam's first order.
    let xid = "order-1";
    record(&ledger, xid, &sam, "sams-token", t0, expires)
        .await
        .unwrap();
    assert_eq!(
        ledger.get(xid, None).await.unwrap().unwrap().token_sha256,
        sha256_hex("sams-token")
    );
    record(&ledger, xid, &alex, "alexs-token", t0 + 1, expires)
        .await
        .expect("another identity's xid is no conflict");
    let shared = ledger.get(xid, None).await.unwrap_err();
    assert_eq!(shared.kind, ErrorKind::Conflict, "{shared:?}");
    assert!(shared.message.contains("identity"), "{}", shared.message);
    for (who, token) in [(&sam, "sams-token"), (&alex, "alexs-token")] {
        let found = ledger.get(xid, Some(who)).await.unwrap().unwrap();
        assert_eq!(found.token_sha256, sha256_hex(token));
    }
    // sam's own xid again: Conflict, and counted: 1 + 1 + 18 reach the limit of 20.
    let again = record(&ledger, xid, &sam, "another", t0 + 2, expires)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    for n in 0..LIMIT - 2 {
        record(&ledger, &format!("sam-{n}"), &sam, "t", t0 + 3, expires)
            .await
            .unwrap_or_else(|e| panic!("mint {n}: {e:?}"));
    }
    let over = record(&ledger, "sam-last", &sam, "t", t0 + 4, expires)
        .await
        .unwrap_err();
    assert_eq!(over.kind, ErrorKind::TooManyRequests, "{over:?}");
}

/// M3: the SMS budgets are counted in the store, so every process spends from one budget:
/// two DynamoDB clients (two Lambdas) alternate, and the deployment's budget and the
/// number's hold across them; a refusal counts nothing and says when to retry.
#[tokio::test]
async fn sms_budgets_hold_across_processes_on_dynamodb() {
    use context_chat::notifications::PhoneNumber;
    use context_chat::notifications::budget::{
        SmsBudgets, SmsPolicy, Spending, TEXTS_PER_NUMBER_PER_DAY,
    };
    let moto = Moto::start();
    let table = unique("budgets");
    let client = moto.dynamodb().await;
    create_table(&client, &table).await.unwrap();
    let processes = [
        SmsBudgets::new(Arc::new(DynamoStore::new(client, table.clone()))),
        SmsBudgets::new(Arc::new(DynamoStore::new(
            moto.dynamodb().await,
            table.clone(),
        ))),
    ];
    let policy = SmsPolicy {
        daily_codes: 3,
        daily_texts: 0,
        allowed_countries: None,
    };
    let number = |n: u32| PhoneNumber::parse(&format!("+1415555{n:04}")).unwrap();
    let mut outcomes = Vec::new();
    for n in 0..5 {
        let process = &processes[n as usize % 2];
        outcomes.push(process.spend(Spending::Code, &number(n), &policy).await);
    }
    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    for refused in &outcomes[3..] {
        let err = refused.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooManyRequests);
        assert!(
            err.retry_after_secs
                .is_some_and(|s| (1..=86_400).contains(&s)),
            "{err:?}"
        );
        assert!(err.message.contains("verification codes"), "{err:?}");
    }
    // Texts have their own budget, and one number gets at most its share of it a day.
    let policy = SmsPolicy {
        daily_texts: TEXTS_PER_NUMBER_PER_DAY + 1,
        ..policy
    };
    let mut passed = 0;
    for n in 0..40 {
        if processes[n % 2]
            .spend(Spending::Text, &number(7), &policy)
            .await
            .is_ok()
        {
            passed += 1;
        }
    }
    assert_eq!(passed, TEXTS_PER_NUMBER_PER_DAY);
    processes[0]
        .spend(Spending::Text, &number(8), &policy)
        .await
        .expect("another number, within the deployment's budget");
    let err = processes[1]
        .spend(Spending::Text, &number(9), &policy)
        .await
        .unwrap_err();
    assert!(
        err.message
            .starts_with("This service has sent all the text messages"),
        "{err:?}"
    );
}
