//! A conversation's messages: create (`Author`, `system` unless given; `Body` within
//! Twilio's 1,600 characters; `Attributes` a JSON object within 4 KB), each with the next
//! index; list in index order (`Order=desc` for the newest first), paged; fetch by SID. A
//! message added fires the service's `onMessageAdded` webhook when the request asks for it
//! (`X-Twilio-Webhook-Enabled: true`; REST requests do not fire webhooks otherwise), as an
//! SDK client's always does.

use axum::response::Response;
use serde_json::{Value, json};

use crate::events::Event;
use crate::state::MessageRec;
use crate::webhook::Source;
use crate::wire::{field, json_response, not_found, now_iso, page, twilio_error};
use crate::{ACCOUNT_SID, CHAT_SERVICE_SID, Emulator};

/// The longest body Twilio takes, in characters.
pub const MAX_BODY_CHARS: usize = 1_600;
/// The largest message attributes Twilio takes, in bytes.
pub const MAX_ATTRIBUTES_BYTES: usize = 4 * 1024;

/// What a new message says; `author` and `attributes` take Twilio's defaults when absent.
pub struct NewMessage<'a> {
    pub author: Option<&'a str>,
    pub body: &'a str,
    pub attributes: Option<&'a str>,
}

impl Emulator {
    pub(crate) async fn create_message(
        &self,
        conversation: &str,
        form: &[(String, String)],
        webhook_enabled: bool,
        path: &str,
    ) -> Response {
        let Some(body) = field(form, "Body") else {
            // Media and content templates are not emulated.
            return twilio_error(400, 20001, "Body is required");
        };
        let new = NewMessage {
            author: field(form, "Author"),
            body,
            attributes: field(form, "Attributes"),
        };
        let source = webhook_enabled.then_some(Source::Api);
        match self.add_message(conversation, new, source) {
            Ok(Some((c, m))) => json_response(201, self.message_json(&c, &m)),
            Ok(None) => not_found(path),
            Err(refused) => refused,
        }
    }

    /// Adds a message (the REST resource, and local mode's browser API); `Ok(None)` when
    /// there is no such conversation. With a `source`, the service's webhook hears of it.
    /// A refusal changes nothing.
    pub fn add_message(
        &self,
        conversation: &str,
        new: NewMessage<'_>,
        source: Option<Source>,
    ) -> Result<Option<(String, MessageRec)>, Response> {
        if new.body.chars().count() > MAX_BODY_CHARS {
            return Err(twilio_error(
                400,
                20001,
                "Body must be at most 1600 characters",
            ));
        }
        let attributes = new.attributes.unwrap_or("{}");
        let is_object = serde_json::from_str::<Value>(attributes).is_ok_and(|v| v.is_object());
        if attributes.len() > MAX_ATTRIBUTES_BYTES || !is_object {
            return Err(twilio_error(
                400,
                20001,
                "Attributes must be a JSON object of at most 4 KB",
            ));
        }
        let sid = self.sid("IM");
        let mut state = self.state();
        let Some(c) = state.conversation_mut(conversation) else {
            return Ok(None);
        };
        if c.is_closed() {
            return Err(crate::conversations::closed());
        }
        let author = new.author.unwrap_or("system").to_owned();
        let message = MessageRec {
            sid,
            index: c.next_index(),
            participant_sid: c.participant(&author).map(|p| p.sid.clone()),
            author,
            body: new.body.to_owned(),
            attributes: attributes.to_owned(),
            date_created: now_iso(),
        };
        c.messages.push(message.clone());
        let sid = c.sid.clone();
        self.persist_message(&sid, &message);
        self.tell(Event::MessageAdded {
            conversation: sid.clone(),
            message: message.clone(),
        });
        let hook = self.message_added_hook(&state, &sid, &message, source);
        drop(state);
        if let Some(hook) = hook {
            hook.send();
        }
        Ok(Some((sid, message)))
    }

    pub(crate) fn list_messages(
        &self,
        conversation: &str,
        query: &[(String, String)],
        path: &str,
    ) -> Response {
        let state = self.state();
        let Some(c) = state.conversation(conversation) else {
            return not_found(path);
        };
        let (size, offset) = page(query, 100);
        let newest_first = field(query, "Order") == Some("desc");
        let ordered: Vec<&MessageRec> = match newest_first {
            true => c.messages.iter().rev().collect(),
            false => c.messages.iter().collect(),
        };
        let messages: Vec<Value> = ordered
            .iter()
            .skip(offset)
            .take(size)
            .map(|m| self.message_json(&c.sid, m))
            .collect();
        let next = (offset + size < ordered.len()).then(|| {
            let order = if newest_first { "&Order=desc" } else { "" };
            format!(
                "{}/v1/Services/{CHAT_SERVICE_SID}{path}?PageSize={size}{order}&PageToken=PT{}",
                self.base_url,
                offset + size
            )
        });
        json_response(
            200,
            json!({"messages": messages, "meta": self.meta(path, "messages", next)}),
        )
    }

    pub(crate) fn fetch_message(&self, conversation: &str, message: &str, path: &str) -> Response {
        let state = self.state();
        let found = state
            .conversation(conversation)
            .and_then(|c| Some((c, c.messages.iter().find(|m| m.sid == message)?)));
        match found {
            Some((c, m)) => json_response(200, self.message_json(&c.sid, m)),
            None => not_found(path),
        }
    }

    pub(crate) fn message_json(&self, conversation_sid: &str, m: &MessageRec) -> Value {
        let url = format!(
            "{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{conversation_sid}/Messages/{}",
            self.base_url, m.sid
        );
        json!({
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "conversation_sid": conversation_sid,
            "sid": m.sid,
            "index": m.index,
            "author": m.author,
            "body": m.body,
            "media": null,
            "attributes": m.attributes,
            "participant_sid": m.participant_sid,
            "date_created": m.date_created,
            "date_updated": m.date_created,
            "delivery": null,
            "content_sid": null,
            "url": url,
            "links": {
                "delivery_receipts": format!("{url}/Receipts"),
                "channel_metadata": format!("{url}/ChannelMetadata"),
            },
        })
    }
}

impl Emulator {
    /// `DELETE …/Messages/{IM…}` (the REST resource: any message, as the account may);
    /// participants hear `messageRemoved`.
    pub(crate) fn delete_message(&self, conversation: &str, message: &str, path: &str) -> Response {
        let removed = {
            let mut state = self.state();
            let Some(c) = state.conversation_mut(conversation) else {
                return not_found(path);
            };
            let Some(at) = c.messages.iter().position(|m| m.sid == message) else {
                return not_found(path);
            };
            let gone = c.messages.remove(at);
            (c.sid.clone(), gone.index)
        };
        let (sid, index) = removed;
        self.unpersist_message(&sid, index);
        self.tell(Event::MessageRemoved {
            conversation: sid,
            index,
        });
        axum::response::IntoResponse::into_response(axum::http::StatusCode::NO_CONTENT)
    }
}
