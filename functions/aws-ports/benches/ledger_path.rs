//! The token path's ledger cost (issue 15): a returning user's `createChatToken` with the
//! ledger and the minting limit on, against the embedded store (SQLite, every commit on disk)
//! and against DynamoDB on moto, beside the same call with them off, from one run in
//! interleaved rounds. Also counts the store calls each mint makes (target: one).
//!
//! Run: `cargo bench -p aws-ports --bench ledger_path` (moto from `MOTO_URL`, else the
//! project's venv, as the tests find it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_ports::{DynamoStore, create_table};
use context_chat::ledger::LedgerPolicy;
use context_chat::notifications::Ports;
use context_chat::notifications::sqlite_store::SqliteStore;
use context_chat::settings::{Settings, SettingsSource, TwilioSettings};
use context_chat::store::{Count, Created, Expect, Key, Store, Stored};
use context_chat::{App, AppOptions, revocations};
use futures_util::future::BoxFuture;
use secrecy::SecretString;
use test_support::{Issuer, Moto, claims, unique};

const ROUNDS: usize = 9;
const PER_ROUND: usize = 40;

/// Counts the calls a store gets, passing each on.
struct Counted {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
}

impl Counted {
    fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicUsize::new(0),
        })
    }
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Store for Counted {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, context_chat::Result<Option<Stored>>> {
        self.tick();
        self.inner.get(key)
    }
    fn put<'a>(
        &'a self,
        key: &'a Key,
        doc: Stored,
        expect: Expect,
    ) -> BoxFuture<'a, context_chat::Result<bool>> {
        self.tick();
        self.inner.put(key, doc, expect)
    }
    fn delete<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, context_chat::Result<()>> {
        self.tick();
        self.inner.delete(key)
    }
    fn query<'a>(
        &'a self,
        partition: &'a str,
        prefix: &'a str,
    ) -> BoxFuture<'a, context_chat::Result<Vec<Stored>>> {
        self.tick();
        self.inner.query(partition, prefix)
    }
    fn create_counted<'a>(
        &'a self,
        counts: Vec<Count>,
        docs: Vec<(Key, Stored)>,
    ) -> BoxFuture<'a, context_chat::Result<Created>> {
        self.tick();
        self.inner.create_counted(counts, docs)
    }
    fn latest<'a>(
        &'a self,
        partition: &'a str,
        prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, context_chat::Result<Vec<Stored>>> {
        self.tick();
        self.inner.latest(partition, prefix, limit)
    }
}

fn settings(issuer: &Issuer) -> Settings {
    Settings {
        twilio: Some(TwilioSettings {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            api_key_sid: "SKfedcba9876543210fedcba9876543210".into(),
            api_secret: SecretString::from("bench-secret"),
            chat_service_sid: "IS00112233445566778899aabbccddeeff".into(),
            access_token_ttl_secs: 3600,
            // Provisioning off: a returning user's memberships are remembered anyway, and
            // what is measured is the ledger.
            api_base_url: None,
            ownership: Default::default(),
            push_credential_sid: None,
        }),
        // The limit on, and never reached: its check runs on every call.
        ledger: LedgerPolicy {
            per_minute: u32::MAX,
            retention_days: 30,
        },
        ..Settings::token_path(issuer.url().parse().unwrap(), None)
    }
}

fn app_on(settings: &Settings, store: Option<Arc<dyn Store>>) -> App {
    let builder = App::builder(
        SettingsSource::Fixed(Box::new(settings.clone())),
        AppOptions::default(),
    );
    match store {
        Some(store) => builder
            .ports(Ports {
                store,
                queue: None,
                public_url: None,
            })
            .build(),
        None => builder.build(),
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn main() {
    let (rt, key, issuer) = test_support::runtime_and_issuer("bench");
    let settings = settings(&issuer);
    let dir = std::env::temp_dir().join(unique("ledger-bench"));
    let sqlite = Counted::new(Arc::new(SqliteStore::open(&dir).unwrap()));
    let moto = Moto::start();
    let dynamo = rt.block_on(async {
        let client = moto.dynamodb().await;
        let table = unique("ledger-bench");
        create_table(&client, &table).await.unwrap();
        Counted::new(Arc::new(DynamoStore::new(client, table)))
    });
    let sides: Vec<(&str, App, Option<Arc<Counted>>)> = vec![
        (
            "ledger and limit off (no store)",
            app_on(&settings, None),
            None,
        ),
        (
            "on, embedded store (SQLite)",
            app_on(&settings, Some(sqlite.clone())),
            Some(sqlite),
        ),
        (
            "on, DynamoDB on moto",
            app_on(&settings, Some(dynamo.clone())),
            Some(dynamo),
        ),
    ];
    // A returning user: the token verified and the revocation read once before.
    let token = key.token(&claims(
        "returning",
        &["general", "SHIPMENT-42", "GROUP-PRIVATE-7"],
    ));
    for (_, app, _) in &sides {
        rt.block_on(app.tokens().create_chat_token("device", &token))
            .unwrap();
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    // The reference for each store: one bare conditional put, the cheapest write it has.
    let mut bare: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    let mut n = 0u64;
    let calls_before: Vec<usize> = sides
        .iter()
        .map(|(_, _, s)| s.as_ref().map_or(0, |s| s.calls.load(Ordering::Relaxed)))
        .collect();
    for _ in 0..ROUNDS {
        for (i, (_, app, _)) in sides.iter().enumerate() {
            let started = Instant::now();
            for _ in 0..PER_ROUND {
                std::hint::black_box(
                    rt.block_on(app.tokens().create_chat_token("device", &token))
                        .unwrap(),
                );
            }
            samples[i].push(started.elapsed().as_secs_f64() / PER_ROUND as f64);
            if let Some(store) = &sides[i].2 {
                let started = Instant::now();
                for _ in 0..PER_ROUND {
                    n += 1;
                    let key = revocations::key(&format!("bench-{n}"));
                    let doc = Stored {
                        version: 1,
                        fields: Default::default(),
                        expires_at: Some(context_chat::context_token::now_unix() + 60),
                    };
                    rt.block_on(store.inner.put(&key, doc, Expect::Absent))
                        .unwrap();
                }
                bare[i].push(started.elapsed().as_secs_f64() / PER_ROUND as f64);
            }
        }
    }
    let mints = (ROUNDS * PER_ROUND) as f64;
    let off = median(samples[0].clone());
    println!(
        "\nreturning user's createChatToken (medians of {ROUNDS} interleaved rounds of {PER_ROUND}, same run):"
    );
    for (i, (name, _, store)) in sides.iter().enumerate() {
        let at = median(samples[i].clone());
        let calls = store
            .as_ref()
            .map(|s| (s.calls.load(Ordering::Relaxed) - calls_before[i]) as f64 / mints);
        println!(
            "  {name:<34} {:>10.1} µs{}{}",
            at * 1e6,
            if i == 0 {
                String::new()
            } else {
                format!(
                    "  (+{:.1} µs over off; one bare put on this store: {:.1} µs)",
                    (at - off) * 1e6,
                    median(bare[i].clone()) * 1e6
                )
            },
            match calls {
                Some(c) => format!(
                    "; store calls per mint {c:.2} (target 1) {}",
                    if c <= 1.0 { "MET" } else { "MISSED" }
                ),
                None => String::new(),
            }
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
