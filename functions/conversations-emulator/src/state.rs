//! What the emulator remembers: one Conversation Service's users, conversations with their
//! participants, roles and configuration.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UserRec {
    pub sid: String,
    pub identity: String,
    pub is_online: Option<bool>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ParticipantRec {
    pub sid: String,
    pub identity: String,
    /// The index of the last message the participant read, as its client reported it.
    pub last_read_message_index: Option<u64>,
    /// Its conversation role; `None`: the service's default conversation role.
    #[serde(default)]
    pub role_sid: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConversationRec {
    pub sid: String,
    pub unique_name: Option<String>,
    pub friendly_name: Option<String>,
    pub attributes: String,
    pub participants: Vec<ParticipantRec>,
    /// `active`, `inactive` or `closed` (final: Twilio refuses any change after it, 50377).
    #[serde(default = "active")]
    pub state: String,
    /// In index order; an index is never given twice, even after a delete. Stored apart
    /// (a row each), not in the snapshot.
    #[serde(skip)]
    pub messages: Vec<MessageRec>,
}

fn active() -> String {
    "active".into()
}

impl ConversationRec {
    /// A conversation without participants or messages.
    pub fn new(sid: String, unique_name: Option<String>, attributes: String) -> Self {
        Self {
            sid,
            friendly_name: unique_name.clone(),
            unique_name,
            attributes,
            participants: vec![],
            state: active(),
            messages: vec![],
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == "closed"
    }

    /// The index the next message gets.
    pub fn next_index(&self) -> u64 {
        self.messages.last().map_or(0, |m| m.index + 1)
    }

    pub fn participant(&self, sid_or_identity: &str) -> Option<&ParticipantRec> {
        self.participants
            .iter()
            .find(|p| p.sid == sid_or_identity || p.identity == sid_or_identity)
    }

    /// Messages after `index` (all of them without one): what a participant has not read.
    pub fn unread_after(&self, index: Option<u64>) -> usize {
        self.messages
            .iter()
            .filter(|m| index.is_none_or(|i| m.index > i))
            .count()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MessageRec {
    pub sid: String,
    pub index: u64,
    pub author: String,
    pub body: String,
    /// A JSON object, as a string.
    pub attributes: String,
    /// The author's participant (`MB…`), when the author is one.
    pub participant_sid: Option<String>,
    /// ISO 8601, UTC.
    pub date_created: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RoleRec {
    pub sid: String,
    pub friendly_name: String,
    pub kind: String,
    pub permissions: Vec<String>,
}

impl ServiceState {
    /// What `participant` may do in a conversation: its role's permissions (the service's
    /// default conversation role when it has none of its own).
    pub fn permissions_of(&self, participant: &ParticipantRec) -> &[String] {
        let sid = participant
            .role_sid
            .as_ref()
            .or(self.default_conversation_role.as_ref());
        sid.and_then(|sid| self.roles.iter().find(|r| &r.sid == sid))
            .map_or(&[], |r| r.permissions.as_slice())
    }

    /// A conversation role of this service, by SID.
    pub fn conversation_role(&self, sid: &str) -> Option<&RoleRec> {
        self.roles
            .iter()
            .find(|r| r.sid == sid && r.kind == "conversation")
    }
}

pub struct ServiceState {
    pub users: Vec<UserRec>,
    pub conversations: Vec<ConversationRec>,
    /// Unique names (and identities, participant keys) whose create is under way.
    pub creating: HashSet<String>,
    pub roles: Vec<RoleRec>,
    pub default_service_role: Option<String>,
    pub default_conversation_role: Option<String>,
    pub default_creator_role: Option<String>,
    pub reachability: bool,
    pub post_webhook_url: Option<String>,
    pub webhook_method: String,
    pub webhook_filters: Vec<String>,
    /// Live event streams per identity (local mode's browser API): reachability.
    pub streams: HashMap<String, usize>,
}

impl Default for ServiceState {
    fn default() -> Self {
        Self {
            users: vec![],
            conversations: vec![],
            creating: HashSet::new(),
            roles: vec![],
            default_service_role: None,
            default_conversation_role: None,
            default_creator_role: None,
            reachability: false,
            post_webhook_url: None,
            webhook_method: "POST".into(),
            webhook_filters: vec![],
            streams: HashMap::new(),
        }
    }
}

impl ServiceState {
    /// The highest number in any SID made so far (their 32 hex digits), so that SIDs made
    /// after a restart are new.
    pub fn highest_sid(&self) -> u64 {
        let number = |sid: &str| sid.get(2..).and_then(|h| u64::from_str_radix(h, 16).ok());
        let users = self.users.iter().map(|u| &u.sid);
        let roles = self.roles.iter().map(|r| &r.sid);
        let conversations = self.conversations.iter().flat_map(|c| {
            std::iter::once(&c.sid)
                .chain(c.participants.iter().map(|p| &p.sid))
                .chain(c.messages.iter().map(|m| &m.sid))
        });
        users
            .chain(roles)
            .chain(conversations)
            .filter_map(|sid| number(sid))
            .max()
            .unwrap_or(0)
    }

    pub fn user(&self, sid_or_identity: &str) -> Option<&UserRec> {
        self.users
            .iter()
            .find(|u| u.sid == sid_or_identity || u.identity == sid_or_identity)
    }

    pub fn conversation(&self, sid_or_name: &str) -> Option<&ConversationRec> {
        self.conversations
            .iter()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }

    pub fn conversation_mut(&mut self, sid_or_name: &str) -> Option<&mut ConversationRec> {
        self.conversations
            .iter_mut()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }
}
