//! What the stand-in remembers: one Conversation Service's users, conversations with their
//! participants, roles and configuration.

use std::collections::HashSet;

#[derive(Debug, Clone)]
pub(super) struct UserRec {
    pub(super) sid: String,
    pub(super) identity: String,
    pub(super) is_online: Option<bool>,
}

#[derive(Debug, Clone)]
pub(super) struct ParticipantRec {
    pub(super) sid: String,
    pub(super) identity: String,
    /// The index of the last message the participant read, as its client reported it.
    pub(super) last_read_message_index: Option<u64>,
}

#[derive(Debug, Clone)]
pub(super) struct ConversationRec {
    pub(super) sid: String,
    pub(super) unique_name: Option<String>,
    pub(super) friendly_name: Option<String>,
    pub(super) attributes: String,
    pub(super) participants: Vec<ParticipantRec>,
}

#[derive(Debug, Clone)]
pub(super) struct RoleRec {
    pub(super) sid: String,
    pub(super) friendly_name: String,
    pub(super) kind: String,
    pub(super) permissions: Vec<String>,
}

pub(super) struct ServiceState {
    pub(super) users: Vec<UserRec>,
    pub(super) conversations: Vec<ConversationRec>,
    /// Unique names (and identities, participant keys) whose create is under way.
    pub(super) creating: HashSet<String>,
    pub(super) roles: Vec<RoleRec>,
    pub(super) default_service_role: Option<String>,
    pub(super) default_conversation_role: Option<String>,
    pub(super) default_creator_role: Option<String>,
    pub(super) reachability: bool,
    pub(super) post_webhook_url: Option<String>,
    pub(super) webhook_method: String,
    pub(super) webhook_filters: Vec<String>,
}

impl ServiceState {
    pub(super) fn new() -> Self {
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
        }
    }

    pub(super) fn user(&self, sid_or_identity: &str) -> Option<&UserRec> {
        self.users
            .iter()
            .find(|u| u.sid == sid_or_identity || u.identity == sid_or_identity)
    }

    pub(super) fn conversation(&self, sid_or_name: &str) -> Option<&ConversationRec> {
        self.conversations
            .iter()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }

    pub(super) fn conversation_mut(&mut self, sid_or_name: &str) -> Option<&mut ConversationRec> {
        self.conversations
            .iter_mut()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }
}
