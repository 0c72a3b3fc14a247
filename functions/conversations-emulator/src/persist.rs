//! Local mode's state on disk (feature `sqlite`): one SQLite file in the data directory,
//! owner-only, so that a restart keeps the conversations, their participants and their
//! history. What changes rarely (users, conversations, participants and their read horizons,
//! roles, configuration, the next SID) is one snapshot row, written after each change;
//! messages are a row each, written as they are added.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::state::{ConversationRec, MessageRec, RoleRec, ServiceState, UserRec};

/// The file in the data directory.
pub const FILE_NAME: &str = "twilio-emulator.sqlite3";

pub(crate) struct Store {
    path: PathBuf,
    connection: Mutex<Connection>,
    /// The snapshot last written, so an unchanged one is not written again.
    written: Mutex<String>,
}

/// Everything but the messages.
#[derive(Serialize, Deserialize)]
pub(crate) struct Snapshot {
    users: Vec<UserRec>,
    conversations: Vec<ConversationRec>,
    roles: Vec<RoleRec>,
    default_service_role: Option<String>,
    default_conversation_role: Option<String>,
    default_creator_role: Option<String>,
    reachability: bool,
    post_webhook_url: Option<String>,
    webhook_method: String,
    webhook_filters: Vec<String>,
}

impl Snapshot {
    pub(crate) fn of(state: &ServiceState) -> Self {
        Self {
            users: state.users.clone(),
            conversations: state.conversations.iter().map(without_messages).collect(),
            roles: state.roles.clone(),
            default_service_role: state.default_service_role.clone(),
            default_conversation_role: state.default_conversation_role.clone(),
            default_creator_role: state.default_creator_role.clone(),
            reachability: state.reachability,
            post_webhook_url: state.post_webhook_url.clone(),
            webhook_method: state.webhook_method.clone(),
            webhook_filters: state.webhook_filters.clone(),
        }
    }

    /// The state it describes, with `messages` put back in their conversations.
    fn into_state(self, mut messages: Vec<(String, MessageRec)>) -> ServiceState {
        let mut conversations = self.conversations;
        messages.sort_by_key(|(_, m)| m.index);
        for (sid, message) in messages {
            if let Some(c) = conversations.iter_mut().find(|c| c.sid == sid) {
                c.messages.push(message);
            }
        }
        ServiceState {
            users: self.users,
            conversations,
            roles: self.roles,
            default_service_role: self.default_service_role,
            default_conversation_role: self.default_conversation_role,
            default_creator_role: self.default_creator_role,
            reachability: self.reachability,
            post_webhook_url: self.post_webhook_url,
            webhook_method: self.webhook_method,
            webhook_filters: self.webhook_filters,
            ..ServiceState::default()
        }
    }
}

fn without_messages(c: &ConversationRec) -> ConversationRec {
    ConversationRec {
        sid: c.sid.clone(),
        unique_name: c.unique_name.clone(),
        friendly_name: c.friendly_name.clone(),
        attributes: c.attributes.clone(),
        participants: c.participants.clone(),
        state: c.state.clone(),
        messages: vec![],
    }
}

impl Store {
    /// Opens (or makes) the file in `dir`; the state it holds, if any.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Option<ServiceState>), String> {
        let path = dir.join(FILE_NAME);
        let failed = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
        create_private(&path).map_err(|e| failed(&e))?;
        let connection = Connection::open(&path).map_err(|e| failed(&e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS messages (
                     conversation TEXT NOT NULL, idx INTEGER NOT NULL, message TEXT NOT NULL,
                     PRIMARY KEY (conversation, idx));",
            )
            .map_err(|e| failed(&e))?;
        let snapshot: Option<String> = connection
            .query_row("SELECT state FROM snapshot WHERE id = 1", [], |r| r.get(0))
            .ok();
        let loaded = match snapshot {
            None => None,
            Some(text) => {
                let snapshot: Snapshot = serde_json::from_str(&text).map_err(|e| {
                    failed(&format!(
                        "not the emulator's state ({e}); move it away to start afresh"
                    ))
                })?;
                let mut rows = connection
                    .prepare("SELECT conversation, message FROM messages")
                    .map_err(|e| failed(&e))?;
                let messages = rows
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(|e| failed(&e))?
                    .filter_map(|row| {
                        let (sid, json) = row.ok()?;
                        Some((sid, serde_json::from_str::<MessageRec>(&json).ok()?))
                    })
                    .collect();
                Some(snapshot.into_state(messages))
            }
        };
        Ok((
            Self {
                path,
                connection: Mutex::new(connection),
                written: Mutex::new(String::new()),
            },
            loaded,
        ))
    }

    /// Writes the snapshot if it changed; a failure is logged, and the state stays in memory.
    pub(crate) fn save(&self, snapshot: &Snapshot) {
        let Ok(text) = serde_json::to_string(snapshot) else {
            return;
        };
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if *written == text {
            return;
        }
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        match connection.execute(
            "INSERT INTO snapshot (id, state) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            params![text],
        ) {
            Ok(_) => *written = text,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "the emulator's state was not saved")
            }
        }
    }

    pub(crate) fn add_message(&self, conversation: &str, message: &MessageRec) {
        let Ok(text) = serde_json::to_string(message) else {
            return;
        };
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = connection.execute(
            "INSERT OR REPLACE INTO messages (conversation, idx, message) VALUES (?1, ?2, ?3)",
            params![conversation, message.index as i64, text],
        ) {
            tracing::warn!(path = %self.path.display(), error = %e, "a message was not saved");
        }
    }
}

impl Store {
    pub(crate) fn remove_message(&self, conversation: &str, index: u64) {
        let connection = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = connection.execute(
            "DELETE FROM messages WHERE conversation = ?1 AND idx = ?2",
            params![conversation, index as i64],
        ) {
            tracing::warn!(path = %self.path.display(), error = %e, "a message was not removed");
        }
    }
}

/// Makes the file owner-only before SQLite opens it (its WAL files follow).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
