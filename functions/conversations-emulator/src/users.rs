//! Users: create (409/50201 when the identity exists or its create is under way), fetch
//! by SID or identity, and a user's conversations, paged as Twilio pages them.

use axum::response::Response;
use serde_json::{Value, json};

use crate::Emulator;
use crate::state::UserRec;
use crate::wire::{field, json_response, not_found, page, twilio_error};
use crate::{ACCOUNT_SID, CHAT_SERVICE_SID};

impl Emulator {
    pub(crate) async fn create_user(&self, form: &[(String, String)]) -> Response {
        let Some(identity) = field(form, "Identity").map(str::to_owned) else {
            return twilio_error(400, 50204, "Identity not provided");
        };
        let key = format!("user:{identity}");
        {
            let mut state = self.state();
            if state.user(&identity).is_some() || state.creating.contains(&key) {
                return twilio_error(409, 50201, "User already exists");
            }
            state.creating.insert(key.clone());
        }
        let creating = self.under_way(Some(key)).await;
        let user = UserRec {
            sid: self.sid("US"),
            identity,
            is_online: None,
        };
        let mut state = self.state();
        creating.done(&mut state);
        state.users.push(user.clone());
        json_response(201, self.user_json(&state, &user))
    }

    pub(crate) fn fetch_user(&self, user: &str, path: &str) -> Response {
        let state = self.state();
        match state.user(user) {
            Some(u) => json_response(200, self.user_json(&state, u)),
            None => not_found(path),
        }
    }

    pub(crate) fn user_conversations(
        &self,
        user: &str,
        query: &[(String, String)],
        path: &str,
    ) -> Response {
        let state = self.state();
        let Some(u) = state.user(user) else {
            return not_found(path);
        };
        let (page_size, offset) = page(query, 100);
        let all: Vec<Value> = state
            .conversations
            .iter()
            .filter_map(|c| {
                let p = c.participants.iter().find(|p| p.identity == u.identity)?;
                Some(json!({
                    "account_sid": ACCOUNT_SID,
                    "chat_service_sid": CHAT_SERVICE_SID,
                    "conversation_sid": c.sid,
                    // Null until the participant's client reported a horizon.
                    "unread_messages_count": p.last_read_message_index.map(|i| c.unread_after(Some(i))),
                    "last_read_message_index": p.last_read_message_index,
                    "participant_sid": p.sid,
                    "user_sid": u.sid,
                    "friendly_name": c.friendly_name,
                    "conversation_state": "active",
                    "timers": {},
                    "attributes": c.attributes,
                    "date_created": "2026-11-22T00:00:00Z",
                    "date_updated": "2026-11-22T00:00:00Z",
                    "created_by": null,
                    "notification_level": "default",
                    "unique_name": c.unique_name,
                    "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Users/{}/Conversations/{}", self.base_url, u.sid, c.sid),
                    "links": {
                        "participant": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{}/Participants/{}", self.base_url, c.sid, p.sid),
                        "conversation": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{}", self.base_url, c.sid),
                    },
                }))
            })
            .collect();
        let page: Vec<Value> = all.iter().skip(offset).take(page_size).cloned().collect();
        let next = (offset + page_size < all.len()).then(|| {
            format!(
                "{}/v1/Services/{CHAT_SERVICE_SID}/Users/{}/Conversations?PageSize={page_size}&Page={}&PageToken=PT{}",
                self.base_url,
                u.sid,
                offset / page_size.max(1) + 1,
                offset + page_size
            )
        });
        json_response(
            200,
            json!({"conversations": page, "meta": self.meta(path, "conversations", next)}),
        )
    }
}
