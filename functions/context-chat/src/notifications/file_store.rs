//! The embedded store of local mode: every document in one JSON file in the data directory,
//! rewritten (to a temporary file, then renamed) on each change, so it survives restarts
//! and a crash mid-write leaves the previous file whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::store::{Expect, Key, Store, Stored};
use crate::context_token::now_unix;
use crate::error::{ChatError, Result};

pub struct FileStore {
    path: PathBuf,
    items: Mutex<BTreeMap<(String, String), Item>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    fields: Map<String, Value>,
}

impl Item {
    fn live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

pub const FILE_NAME: &str = "notifications.json";

impl FileStore {
    /// Opens (or starts) `notifications.json` in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let items: Vec<Item> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ChatError::internal(format!(
                    "{} is not a notifications store ({e}); move it away to start afresh.",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(ChatError::internal(format!("{}: {e}", path.display())));
            }
        };
        Ok(Self {
            path,
            items: Mutex::new(
                items
                    .into_iter()
                    .map(|i| ((i.pk.clone(), i.sk.clone()), i))
                    .collect(),
            ),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self, items: &BTreeMap<(String, String), Item>) -> Result<()> {
        let all: Vec<&Item> = items.values().collect();
        let bytes = serde_json::to_vec_pretty(&all)
            .map_err(|e| ChatError::internal(format!("store: {e}")))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ChatError::internal(format!("{}: {e}", dir.display())))?;
        }
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(|e| ChatError::internal(format!("{}: {e}", self.path.display())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Item>> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for FileStore {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Stored>>> {
        Box::pin(async move {
            let items = self.lock();
            Ok(items
                .get(&(key.partition(), key.sort()))
                .filter(|i| i.live(now_unix()))
                .map(|i| Stored {
                    version: i.version,
                    fields: i.fields.clone(),
                    expires_at: i.expires_at,
                }))
        })
    }

    fn put<'a>(&'a self, key: &'a Key, doc: Stored, expect: Expect) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut items = self.lock();
            let id = (key.partition(), key.sort());
            let current = items.get(&id).filter(|i| i.live(now_unix()));
            let holds = match expect {
                Expect::Anything => true,
                Expect::Absent => current.is_none(),
                Expect::Version(v) => current.is_some_and(|i| i.version == v),
            };
            if !holds {
                return Ok(false);
            }
            let previous = items.insert(
                id.clone(),
                Item {
                    pk: id.0.clone(),
                    sk: id.1.clone(),
                    version: doc.version,
                    expires_at: doc.expires_at,
                    fields: doc.fields,
                },
            );
            if let Err(err) = self.save(&items) {
                // Not written: put the memory back as the file still has it.
                match previous {
                    Some(p) => items.insert(id, p),
                    None => items.remove(&id),
                };
                return Err(err);
            }
            Ok(true)
        })
    }

    fn delete<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut items = self.lock();
            let id = (key.partition(), key.sort());
            let Some(previous) = items.remove(&id) else {
                return Ok(());
            };
            if let Err(err) = self.save(&items) {
                items.insert(id, previous);
                return Err(err);
            }
            Ok(())
        })
    }

    fn query<'a>(
        &'a self,
        partition: &'a str,
        sort_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Stored>>> {
        Box::pin(async move {
            let items = self.lock();
            let now = now_unix();
            Ok(items
                .range((partition.to_owned(), String::new())..)
                .take_while(|((pk, _), _)| pk == partition)
                .filter(|((_, sk), item)| sk.starts_with(sort_prefix) && item.live(now))
                .map(|(_, item)| Stored {
                    version: item.version,
                    fields: item.fields.clone(),
                    expires_at: item.expires_at,
                })
                .collect())
        })
    }
}
