//! The embedded store of local mode (feature `embedded-store`): SQLite in WAL mode, one
//! file in the data directory readable only by its owner. Every write is a transaction that
//! is on disk (`synchronous = FULL`) before it is acknowledged, so a process killed at any
//! moment leaves a store that opens and holds every write it acknowledged. A conditional
//! put reads and writes inside one `IMMEDIATE` transaction, so writers in other processes
//! are serialised by SQLite's lock rather than by this process's memory.
//!
//! The JSON file of earlier versions (`notifications.json`) is imported once on open and
//! renamed `notifications.json.imported`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::store::{COUNT_FIELD, Count, Created, Expect, Key, Store, Stored};

pub const FILE_NAME: &str = "store.sqlite3";
/// Where earlier versions kept the documents: imported once, then renamed.
pub const LEGACY_FILE_NAME: &str = "notifications.json";

/// The schema's version, in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

pub struct SqliteStore {
    path: PathBuf,
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or makes) the store in `dir`, importing a legacy `notifications.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        let path = dir.join(FILE_NAME);
        create_private(&path)?;
        let connection = Connection::open(&path).map_err(|e| failed(&path, e))?;
        configure(&connection).map_err(|e| failed(&path, e))?;
        let store = Self {
            path,
            connection: Arc::new(Mutex::new(connection)),
        };
        store.import_legacy(dir)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection off the async threads: a write waits for its fsync.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection).map_err(|e| failed(&path, e))
        })
        .await
        .map_err(|_| ChatError::internal("The embedded store's worker stopped."))?
    }

    /// Imports the documents of `notifications.json` (earlier versions' store) in one
    /// transaction, then renames the file so that it is imported only once.
    fn import_legacy(&self, dir: &Path) -> Result<()> {
        let legacy = dir.join(LEGACY_FILE_NAME);
        let bytes = match std::fs::read(&legacy) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed(&legacy, e)),
        };
        let items: Vec<LegacyItem> = serde_json::from_slice(&bytes).map_err(|e| {
            ChatError::internal(format!(
                "{} is not a notifications store ({e}); move it away to start afresh.",
                legacy.display()
            ))
        })?;
        let count = items.len();
        {
            let mut connection = self
                .connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut import = || -> rusqlite::Result<()> {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for item in &items {
                    // What is in the database already is newer than the file.
                    tx.execute(
                        "INSERT OR IGNORE INTO documents (pk, sk, version, expires_at, fields) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            item.pk,
                            item.sk,
                            to_sql(item.version),
                            item.expires_at.map(to_sql),
                            Value::Object(item.fields.clone()).to_string()
                        ],
                    )?;
                }
                tx.commit()
            };
            import().map_err(|e| failed(&self.path, e))?;
        }
        let renamed = dir.join(format!("{LEGACY_FILE_NAME}.imported"));
        std::fs::rename(&legacy, &renamed).map_err(|e| failed(&legacy, e))?;
        tracing::info!(documents = count, from = %legacy.display(), to = %self.path.display(), "imported the notifications of an earlier version");
        Ok(())
    }
}

/// A document of `notifications.json`.
#[derive(Deserialize)]
struct LegacyItem {
    pk: String,
    sk: String,
    version: u64,
    #[serde(default)]
    expires_at: Option<u64>,
    fields: Map<String, Value>,
}

/// Makes the file, readable and writable by its owner only, before SQLite opens it; SQLite
/// gives its WAL and shared-memory files the same permissions.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| failed(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(path, e))?;
    }
    Ok(())
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // Every acknowledged write is on disk, not only in the WAL's page cache.
    connection.pragma_update(None, "synchronous", "FULL")?;
    // A deleted record's bytes are overwritten, not left in free pages: erasure (issue 35)
    // removes a person's addresses from the file, not only from the table.
    connection.pragma_update(None, "secure_delete", "ON")?;
    let version: i64 = connection.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS documents (
                 pk TEXT NOT NULL,
                 sk TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 expires_at INTEGER,
                 fields TEXT NOT NULL,
                 PRIMARY KEY (pk, sk)
             ) WITHOUT ROWID;",
        )?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    // What expired is never read again; drop it now and then (here, on open).
    connection.execute(
        "DELETE FROM documents WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [to_sql(now_unix())],
    )?;
    Ok(())
}

/// SQLite integers are signed; versions and times fit with room to spare.
fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn failed(path: &Path, error: impl std::fmt::Display) -> ChatError {
    ChatError::internal(format!(
        "The embedded store {} failed: {error}",
        path.display()
    ))
}

/// Writes `doc` at (pk, sk), whatever is there; the caller has checked what it expects.
fn upsert(c: &Connection, pk: &str, sk: &str, doc: &Stored) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO documents (pk, sk, version, expires_at, fields) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (pk, sk) DO UPDATE SET version = excluded.version, \
         expires_at = excluded.expires_at, fields = excluded.fields",
        params![
            pk,
            sk,
            to_sql(doc.version),
            doc.expires_at.map(to_sql),
            Value::Object(doc.fields.clone()).to_string()
        ],
    )
    .map(|_| ())
}

fn live(expires_at: Option<i64>, now: u64) -> bool {
    expires_at.is_none_or(|at| from_sql(at) > now)
}

fn row_to_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Stored, Option<i64>)> {
    let version: i64 = row.get(0)?;
    let expires_at: Option<i64> = row.get(1)?;
    let fields: String = row.get(2)?;
    let fields = match serde_json::from_str(&fields) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok((
        Stored {
            version: from_sql(version),
            fields,
            expires_at: expires_at.map(from_sql),
        },
        expires_at,
    ))
}

impl Store for SqliteStore {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Stored>>> {
        let (pk, sk) = (key.partition().to_owned(), key.sort().to_owned());
        Box::pin(self.with(move |c| {
            let found = c
                .query_row(
                    "SELECT version, expires_at, fields FROM documents WHERE pk = ?1 AND sk = ?2",
                    params![pk, sk],
                    row_to_stored,
                )
                .optional()?;
            Ok(found
                .filter(|(_, expires_at)| live(*expires_at, now_unix()))
                .map(|(doc, _)| doc))
        }))
    }

    fn put<'a>(&'a self, key: &'a Key, doc: Stored, expect: Expect) -> BoxFuture<'a, Result<bool>> {
        let (pk, sk) = (key.partition().to_owned(), key.sort().to_owned());
        Box::pin(self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT version, expires_at FROM documents WHERE pk = ?1 AND sk = ?2",
                    params![pk, sk],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let current = current.filter(|(_, expires_at)| live(*expires_at, now_unix()));
            let holds = match expect {
                Expect::Anything => true,
                Expect::Absent => current.is_none(),
                Expect::Version(v) => current.is_some_and(|(version, _)| from_sql(version) == v),
            };
            if !holds {
                return Ok(false);
            }
            upsert(&tx, &pk, &sk, &doc)?;
            tx.commit()?;
            Ok(true)
        }))
    }

    fn delete<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<()>> {
        let (pk, sk) = (key.partition().to_owned(), key.sort().to_owned());
        Box::pin(self.with(move |c| {
            c.execute(
                "DELETE FROM documents WHERE pk = ?1 AND sk = ?2",
                params![pk, sk],
            )
            .map(|_| ())
        }))
    }

    fn create_counted<'a>(
        &'a self,
        counts: Vec<Count>,
        docs: Vec<(Key, Stored)>,
    ) -> BoxFuture<'a, Result<Created>> {
        let counts: Vec<_> = counts
            .into_iter()
            .map(|c| {
                (
                    c.key.partition().to_owned(),
                    c.key.sort().to_owned(),
                    c.max,
                    c.expires_at,
                )
            })
            .collect();
        let docs: Vec<(String, String, Stored)> = docs
            .into_iter()
            .map(|(key, doc)| (key.partition().to_owned(), key.sort().to_owned(), doc))
            .collect();
        Box::pin(self.with(move |c| {
            let now = now_unix();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live_row = |pk: &str, sk: &str| -> rusqlite::Result<Option<Stored>> {
                Ok(tx
                    .query_row(
                        "SELECT version, expires_at, fields FROM documents WHERE pk = ?1 AND sk = ?2",
                        params![pk, sk],
                        row_to_stored,
                    )
                    .optional()?
                    .filter(|(_, expires_at)| live(*expires_at, now))
                    .map(|(doc, _)| doc))
            };
            for (pk, sk, _) in &docs {
                if live_row(pk, sk)?.is_some() {
                    return Ok(Created::Exists);
                }
            }
            let mut counted = Vec::with_capacity(counts.len());
            for (i, (pk, sk, max, _)) in counts.iter().enumerate() {
                let n = live_row(pk, sk)?
                    .and_then(|doc| doc.fields.get(COUNT_FIELD).and_then(Value::as_u64))
                    .unwrap_or(0);
                if n >= *max {
                    return Ok(Created::OverLimit(i));
                }
                counted.push(n + 1);
            }
            for ((pk, sk, _, expires_at), n) in counts.iter().zip(counted) {
                let mut fields = Map::new();
                fields.insert(COUNT_FIELD.into(), n.into());
                upsert(
                    &tx,
                    pk,
                    sk,
                    &Stored {
                        version: n,
                        fields,
                        expires_at: Some(*expires_at),
                    },
                )?;
            }
            for (pk, sk, doc) in &docs {
                upsert(&tx, pk, sk, doc)?;
            }
            tx.commit()?;
            Ok(Created::Done)
        }))
    }

    fn latest<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Stored>>> {
        let (pk, prefix) = (partition.to_owned(), sort_prefix.to_owned());
        Box::pin(self.with(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT version, expires_at, fields FROM documents \
                 WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 \
                 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY sk DESC LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![pk, prefix, to_sql(now_unix()), to_sql(limit as u64)],
                row_to_stored,
            )?;
            rows.map(|row| row.map(|(doc, _)| doc)).collect()
        }))
    }

    fn query<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Stored>>> {
        let (pk, prefix) = (partition.to_owned(), sort_prefix.to_owned());
        Box::pin(self.with(move |c| {
            let now = now_unix();
            let mut statement = c.prepare_cached(
                "SELECT version, expires_at, fields FROM documents \
                 WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 ORDER BY sk",
            )?;
            let rows = statement.query_map(params![pk, prefix], row_to_stored)?;
            let mut found = Vec::new();
            for row in rows {
                let (doc, expires_at) = row?;
                if live(expires_at, now) {
                    found.push(doc);
                }
            }
            Ok(found)
        }))
    }

    /// Writes the WAL back into the file and empties it, so that the old page images of
    /// erased records are gone from both.
    fn forget_deleted(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.with(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))))
    }

    fn query_keyed<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(String, Stored)>>> {
        let (pk, prefix) = (partition.to_owned(), sort_prefix.to_owned());
        Box::pin(self.with(move |c| {
            let now = now_unix();
            let mut statement = c.prepare_cached(
                "SELECT version, expires_at, fields, sk FROM documents \
                 WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 ORDER BY sk",
            )?;
            let rows = statement.query_map(params![pk, prefix], |row| {
                Ok((row_to_stored(row)?, row.get::<_, String>(3)?))
            })?;
            let mut found = Vec::new();
            for row in rows {
                let ((doc, expires_at), sort) = row?;
                if live(expires_at, now) {
                    found.push((sort, doc));
                }
            }
            Ok(found)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "context-chat-sqlite-{name}-{}-{}",
            std::process::id(),
            now_unix()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn doc(version: u64, n: i64, expires_at: Option<u64>) -> Stored {
        let mut fields = Map::new();
        fields.insert("n".into(), Value::from(n));
        Stored {
            version,
            fields,
            expires_at,
        }
    }

    fn key(identity: &str) -> Key {
        Key::new("test", "CHANNEL#general".into(), format!("SUB#{identity}"))
    }

    #[tokio::test]
    async fn conditional_puts_hold_across_reopening_and_expired_documents_are_absent() {
        let dir = temp_dir("puts");
        let store = SqliteStore::open(&dir).unwrap();
        assert!(
            store
                .put(&key("alex"), doc(1, 1, None), Expect::Absent)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put(&key("alex"), doc(1, 2, None), Expect::Absent)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put(&key("alex"), doc(2, 2, None), Expect::Version(7))
                .await
                .unwrap()
        );
        assert!(
            store
                .put(&key("alex"), doc(2, 2, None), Expect::Version(1))
                .await
                .unwrap()
        );
        // Expired: gone for reads, and a put that expects it absent succeeds.
        assert!(
            store
                .put(&key("sam"), doc(1, 1, Some(1)), Expect::Anything)
                .await
                .unwrap()
        );
        assert_eq!(store.get(&key("sam")).await.unwrap(), None);
        assert!(
            store
                .put(&key("sam"), doc(1, 3, None), Expect::Absent)
                .await
                .unwrap()
        );
        let other = Key::new("test", "CHANNEL#general".into(), "DIGEST#alex@example.org");
        store
            .put(&other, doc(1, 9, None), Expect::Anything)
            .await
            .unwrap();
        drop(store);

        let store = SqliteStore::open(&dir).unwrap();
        assert_eq!(
            store.get(&key("alex")).await.unwrap(),
            Some(doc(2, 2, None))
        );
        let subscribers = store.query("CHANNEL#general", "SUB#").await.unwrap();
        assert_eq!(subscribers, [doc(2, 2, None), doc(1, 3, None)]);
        store.delete(&key("alex")).await.unwrap();
        store.delete(&key("alex")).await.unwrap();
        assert_eq!(store.get(&key("alex")).await.unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [FILE_NAME, "store.sqlite3-wal"] {
                let mode = std::fs::metadata(dir.join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_json_file_of_earlier_versions_is_imported_once() {
        let dir = temp_dir("import");
        std::fs::create_dir_all(&dir).unwrap();
        let legacy = serde_json::json!([
            {"pk": "CHANNEL#general", "sk": "SUB#alex", "version": 3,
             "fields": {"channel": "general", "identity": "alex"}},
            {"pk": "CHANNEL#general", "sk": "SUB#old", "version": 1, "expires_at": 1,
             "fields": {}}
        ]);
        std::fs::write(dir.join(LEGACY_FILE_NAME), legacy.to_string()).unwrap();
        let store = SqliteStore::open(&dir).unwrap();
        let alex = store.get(&key("alex")).await.unwrap().unwrap();
        assert_eq!(alex.version, 3);
        assert_eq!(alex.fields["identity"], "alex");
        assert_eq!(store.get(&key("old")).await.unwrap(), None, "expired");
        assert!(!dir.join(LEGACY_FILE_NAME).exists());
        assert!(dir.join("notifications.json.imported").exists());
        // A change after the import is not undone by opening again.
        store.delete(&key("alex")).await.unwrap();
        drop(store);
        let store = SqliteStore::open(&dir).unwrap();
        assert_eq!(store.get(&key("alex")).await.unwrap(), None);

        std::fs::write(dir.join(LEGACY_FILE_NAME), "not json").unwrap();
        drop(store);
        let err = SqliteStore::open(&dir).err().unwrap();
        assert!(err.message.contains("move it away"), "{}", err.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
