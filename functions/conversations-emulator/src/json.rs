//! The resources as Twilio's JSON represents them, with the fields the spec requires.

use serde_json::{Value, json};

use crate::Emulator;
use crate::state::{ConversationRec, ParticipantRec, RoleRec, ServiceState, UserRec};
use crate::{ACCOUNT_SID, CHAT_SERVICE_SID};

impl Emulator {
    pub(crate) fn meta(&self, path: &str, key: &str, next: Option<String>) -> Value {
        let url = format!("{}/v1/Services/{CHAT_SERVICE_SID}{path}", self.base_url);
        json!({
            "page": 0,
            "page_size": 50,
            "first_page_url": format!("{url}?PageSize=50&Page=0"),
            "previous_page_url": null,
            "url": format!("{url}?PageSize=50&Page=0"),
            "next_page_url": next,
            "key": key,
        })
    }

    /// `is_online`: what a test set, else, with reachability on, whether the identity has a
    /// live event stream (local mode's browser API); null with reachability off, as Twilio.
    pub(crate) fn user_json(&self, s: &ServiceState, u: &UserRec) -> Value {
        let live = s.streams.get(&u.identity).is_some_and(|n| *n > 0);
        let is_online = u.is_online.or(s.reachability.then_some(live));
        let url = format!(
            "{}/v1/Services/{CHAT_SERVICE_SID}/Users/{}",
            self.base_url, u.sid
        );
        json!({
            "sid": u.sid,
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "role_sid": null,
            "identity": u.identity,
            "friendly_name": null,
            "attributes": "{}",
            "is_online": is_online,
            "is_notifiable": null,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "url": url,
            "links": {"user_conversations": format!("{url}/Conversations")},
        })
    }

    pub(crate) fn conversation_json(&self, c: &ConversationRec) -> Value {
        let url = format!(
            "{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{}",
            self.base_url, c.sid
        );
        json!({
            "sid": c.sid,
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "messaging_service_sid": null,
            "unique_name": c.unique_name,
            "friendly_name": c.friendly_name,
            "attributes": c.attributes,
            "state": c.state,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "timers": {},
            "bindings": null,
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "messages": format!("{url}/Messages"),
                "webhooks": format!("{url}/Webhooks"),
            },
        })
    }

    pub(crate) fn participant_json(&self, conversation_sid: &str, p: &ParticipantRec) -> Value {
        json!({
            "sid": p.sid,
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "conversation_sid": conversation_sid,
            "identity": p.identity,
            "attributes": "{}",
            "messaging_binding": null,
            "role_sid": p.role_sid,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{}/Participants/{}", self.base_url, conversation_sid, p.sid),
            "last_read_message_index": p.last_read_message_index,
            "last_read_timestamp": null,
        })
    }

    pub(crate) fn role_json(&self, r: &RoleRec) -> Value {
        json!({
            "sid": r.sid,
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "friendly_name": r.friendly_name,
            "type": r.kind,
            "permissions": r.permissions,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Roles/{}", self.base_url, r.sid),
        })
    }

    pub fn configuration_json(&self, s: &ServiceState) -> Value {
        json!({
            "chat_service_sid": CHAT_SERVICE_SID,
            "default_conversation_creator_role_sid": s.default_creator_role,
            "default_conversation_role_sid": s.default_conversation_role,
            "default_chat_service_role_sid": s.default_service_role,
            "reachability_enabled": s.reachability,
            "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Configuration", self.base_url),
            "links": {},
        })
    }

    pub fn webhooks_json(&self, s: &ServiceState) -> Value {
        json!({
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "pre_webhook_url": null,
            "post_webhook_url": s.post_webhook_url,
            "filters": s.webhook_filters,
            "method": s.webhook_method,
            "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Configuration/Webhooks", self.base_url),
        })
    }
}
