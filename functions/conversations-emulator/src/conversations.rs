//! Conversations and their participants: create, alone or with its participants in one call
//! (`ConversationWithParticipants`; 50353 for a taken unique name, 50391 while a create of it
//! is under way, 50390 for a name that looks like a SID), fetch and update;
//! participants listed, added (50433 when already there; an unknown identity becomes a
//! user, as at Twilio), fetched by SID or identity, and removed by SID.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Emulator;
use crate::state::{ConversationRec, ParticipantRec, UserRec};
use crate::wire::{field, json_response, not_found, twilio_error};

impl Emulator {
    pub(crate) async fn create_conversation(&self, form: &[(String, String)]) -> Response {
        self.create_conversation_with(form, vec![]).await
    }

    /// `Participant` is repeated, each a JSON object of the participant resource's
    /// parameters; by identity here. All made at once with the conversation, or none.
    pub(crate) async fn create_conversation_with_participants(
        &self,
        form: &[(String, String)],
    ) -> Response {
        let mut identities: Vec<(String, Option<String>)> = Vec::new();
        for (key, value) in form.iter().filter(|(k, _)| k == "Participant") {
            let participant = serde_json::from_str::<Value>(value).unwrap_or(Value::Null);
            let identity = participant["identity"].as_str().map(str::to_owned);
            let role = participant["role_sid"].as_str().map(str::to_owned);
            if let Some(role) = &role
                && self.state().conversation_role(role).is_none()
            {
                return twilio_error(400, 50210, "Role not found");
            }
            match identity {
                Some(identity) if !identities.iter().any(|(i, _)| i == &identity) => {
                    identities.push((identity, role))
                }
                Some(_) => return twilio_error(409, 50433, "Participant already exists"),
                None => {
                    return twilio_error(400, 50404, &format!("{key}: identity must be provided"));
                }
            }
        }
        if identities.len() > 10 {
            return twilio_error(400, 50400, "At most 10 participants in one request");
        }
        self.create_conversation_with(form, identities).await
    }

    async fn create_conversation_with(
        &self,
        form: &[(String, String)],
        identities: Vec<(String, Option<String>)>,
    ) -> Response {
        let unique_name = field(form, "UniqueName").map(str::to_owned);
        if let Some(name) = &unique_name
            && name.len() == 34
            && name.starts_with("CH")
            && name[2..].chars().all(|c| c.is_ascii_hexdigit())
        {
            return twilio_error(400, 50390, "Unique name cannot be a SID");
        }
        let key = unique_name.as_ref().map(|n| format!("conversation:{n}"));
        if let (Some(name), Some(key)) = (&unique_name, &key) {
            let mut state = self.state();
            if state.creating.contains(key) {
                return twilio_error(409, 50391, "Conflicting conversation modification");
            }
            if state.conversation(name).is_some() {
                return twilio_error(
                    409,
                    50353,
                    "Conversation with provided unique name already exists",
                );
            }
            state.creating.insert(key.clone());
        }
        let creating = self.under_way(key).await;
        let participants: Vec<ParticipantRec> = identities
            .iter()
            .map(|(identity, role_sid)| ParticipantRec {
                sid: self.sid("MB"),
                identity: identity.clone(),
                last_read_message_index: None,
                role_sid: role_sid.clone(),
            })
            .collect();
        let identities: Vec<String> = identities.into_iter().map(|(i, _)| i).collect();
        let conversation = ConversationRec {
            friendly_name: field(form, "FriendlyName").map(str::to_owned),
            participants,
            ..ConversationRec::new(
                self.sid("CH"),
                unique_name,
                field(form, "Attributes").unwrap_or("{}").to_owned(),
            )
        };
        let user_sids: Vec<String> = identities.iter().map(|_| self.sid("US")).collect();
        let mut state = self.state();
        creating.done(&mut state);
        // Twilio makes the users of unknown identities, as on adding a participant.
        for (identity, sid) in identities.into_iter().zip(user_sids) {
            if state.user(&identity).is_none() {
                state.users.push(UserRec {
                    sid,
                    identity,
                    is_online: None,
                });
            }
        }
        for p in &conversation.participants {
            self.membership_changed(&conversation.sid, &p.identity, true);
        }
        state.conversations.push(conversation.clone());
        json_response(201, self.conversation_json(&conversation))
    }

    pub(crate) fn fetch_conversation(&self, conversation: &str, path: &str) -> Response {
        let state = self.state();
        match state.conversation(conversation) {
            Some(c) => json_response(200, self.conversation_json(c)),
            None => not_found(path),
        }
    }

    pub(crate) fn update_conversation(
        &self,
        conversation: &str,
        form: &[(String, String)],
        path: &str,
    ) -> Response {
        let mut state = self.state();
        let new_state = field(form, "State");
        if new_state.is_some_and(|s| !["active", "inactive", "closed"].contains(&s)) {
            return twilio_error(400, 20001, "State must be active, inactive or closed");
        }
        let unique_name = field(form, "UniqueName");
        if let Some(name) = unique_name
            && state.conversation(name).is_some_and(|other| {
                other.sid != conversation && other.unique_name.as_deref() != Some(conversation)
            })
        {
            return twilio_error(
                409,
                50353,
                "Conversation with provided unique name already exists",
            );
        }
        let Some(c) = state.conversation_mut(conversation) else {
            return not_found(path);
        };
        if c.is_closed() {
            return closed();
        }
        if let Some(attributes) = field(form, "Attributes") {
            c.attributes = attributes.into();
        }
        if let Some(name) = field(form, "FriendlyName") {
            c.friendly_name = Some(name.into());
        }
        if let Some(name) = unique_name {
            c.unique_name = Some(name.into());
        }
        if let Some(new_state) = new_state {
            c.state = new_state.into();
        }
        let c = c.clone();
        json_response(200, self.conversation_json(&c))
    }

    pub(crate) fn list_participants(&self, conversation: &str, path: &str) -> Response {
        let state = self.state();
        let Some(c) = state.conversation(conversation) else {
            return not_found(path);
        };
        let participants: Vec<Value> = c
            .participants
            .iter()
            .map(|p| self.participant_json(&c.sid, p))
            .collect();
        json_response(
            200,
            json!({"participants": participants, "meta": self.meta(path, "participants", None)}),
        )
    }

    pub(crate) async fn add_participant(
        &self,
        conversation: &str,
        form: &[(String, String)],
        path: &str,
    ) -> Response {
        let Some(identity) = field(form, "Identity").map(str::to_owned) else {
            return twilio_error(400, 50404, "Identity or MessagingBinding must be provided");
        };
        let role_sid = field(form, "RoleSid").map(str::to_owned);
        let key = {
            let mut state = self.state();
            if let Some(role) = &role_sid
                && state.conversation_role(role).is_none()
            {
                return twilio_error(400, 50210, "Role not found");
            }
            let Some(c) = state.conversation(conversation) else {
                return not_found(path);
            };
            if c.is_closed() {
                return closed();
            }
            let key = format!("participant:{}:{identity}", c.sid);
            if c.participants.iter().any(|p| p.identity == identity)
                || state.creating.contains(&key)
            {
                return twilio_error(409, 50433, "Participant already exists");
            }
            state.creating.insert(key.clone());
            key
        };
        let creating = self.under_way(Some(key)).await;
        let participant = ParticipantRec {
            sid: self.sid("MB"),
            identity: identity.clone(),
            last_read_message_index: None,
            role_sid,
        };
        let user_sid = self.sid("US");
        let mut state = self.state();
        creating.done(&mut state);
        // Twilio makes the user when a participant is added by an unknown identity.
        if state.user(&identity).is_none() {
            state.users.push(UserRec {
                sid: user_sid,
                identity,
                is_online: None,
            });
        }
        let Some(c) = state.conversation_mut(conversation) else {
            return not_found(path);
        };
        c.participants.push(participant.clone());
        let sid = c.sid.clone();
        self.membership_changed(&sid, &participant.identity, true);
        json_response(201, self.participant_json(&sid, &participant))
    }

    pub(crate) fn fetch_participant(
        &self,
        conversation: &str,
        participant: &str,
        path: &str,
    ) -> Response {
        let state = self.state();
        let Some(c) = state.conversation(conversation) else {
            return not_found(path);
        };
        match c.participant(participant) {
            Some(p) => json_response(200, self.participant_json(&c.sid, p)),
            None => twilio_error(404, 50432, "Participant not found"),
        }
    }

    /// A participant's read horizon (`LastReadMessageIndex`, as its client reports what it
    /// read) and role (`RoleSid`, a conversation role of the service), by SID or identity.
    /// A value that is not a number, or no such role, is refused; nothing changes.
    pub(crate) fn update_participant(
        &self,
        conversation: &str,
        participant: &str,
        form: &[(String, String)],
        path: &str,
    ) -> Response {
        let horizon = match field(form, "LastReadMessageIndex") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(index) => Some(index),
                Err(_) => {
                    return twilio_error(400, 20001, "LastReadMessageIndex must be an integer");
                }
            },
        };
        let role_sid = field(form, "RoleSid").map(str::to_owned);
        let mut state = self.state();
        if let Some(role) = &role_sid
            && state.conversation_role(role).is_none()
        {
            return twilio_error(400, 50210, "Role not found");
        }
        let Some(c) = state.conversation_mut(conversation) else {
            return not_found(path);
        };
        let Some(p) = c
            .participants
            .iter_mut()
            .find(|p| p.sid == participant || p.identity == participant)
        else {
            return twilio_error(404, 50432, "Participant not found");
        };
        if horizon.is_some() {
            p.last_read_message_index = horizon;
        }
        if role_sid.is_some() {
            p.role_sid = role_sid;
        }
        let p = p.clone();
        let sid = c.sid.clone();
        json_response(200, self.participant_json(&sid, &p))
    }

    pub(crate) fn remove_participant(
        &self,
        conversation: &str,
        participant: &str,
        path: &str,
    ) -> Response {
        let mut state = self.state();
        let Some(c) = state.conversation_mut(conversation) else {
            return not_found(path);
        };
        // Update and delete take the MB… SID only.
        let Some(at) = c.participants.iter().position(|p| p.sid == participant) else {
            return twilio_error(404, 50432, "Participant not found");
        };
        let gone = c.participants.remove(at);
        let sid = c.sid.clone();
        self.membership_changed(&sid, &gone.identity, false);
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Twilio's answer to any change of a closed conversation.
pub(crate) fn closed() -> Response {
    twilio_error(
        400,
        50377,
        "Can't update conversation as it's in final closed state",
    )
}
