//! Twilio's post-event webhook: signature first, then the `onMessageAdded` fields the
//! notifier needs. Other events are acknowledged and ignored; Twilio may add parameters at
//! any time, so unknown ones are ignored too (they are in the signature all the same).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ChatError, Result};
use crate::names::looks_like_sid;
use crate::twilio::webhook_signature::SignatureChecker;

/// One new message, as queued for the notifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    pub conversation_sid: String,
    pub message_sid: String,
    pub author: String,
    pub body: String,
    pub date_created: String,
    /// The message's place in its conversation, to compare with what a participant read.
    /// Absent in events queued before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// An HTTP request as it reached us: the URL Twilio called (scheme, host, path, query as
/// sent), the `X-Twilio-Signature` header, the content type and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    pub signature: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Queued {
        message_sid: String,
    },
    /// Signed, but not an event the notifier acts on.
    Ignored {
        event_type: String,
    },
}

/// Twilio's message bodies are at most 32 KiB of text; form encoding can triple that.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// Checks the signature and reads the event. `AccessDenied` for a missing or wrong
/// signature (the HTTP door answers 403), `BadRequest` for a signed request that is not
/// a usable event.
pub fn read_event(
    request: &WebhookRequest<'_>,
    checker: &SignatureChecker,
) -> Result<Option<MessageEvent>> {
    let signature = request
        .signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChatError::access_denied("The X-Twilio-Signature header is missing."))?;
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ChatError::bad_request("The webhook body is too large."));
    }
    let is_json = request.content_type.is_some_and(|t| {
        t.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let params: Vec<(String, String)> = if is_json {
        if !checker.check_json(request.url, request.body, signature) {
            return Err(bad_signature());
        }
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(request.body) else {
            return Err(ChatError::bad_request(
                "The webhook body is not a JSON object.",
            ));
        };
        map.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect()
    } else {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(request.body)
            .into_owned()
            .collect();
        if !checker.check_form(request.url, &params, signature) {
            return Err(bad_signature());
        }
        params
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let event_type = get("EventType").unwrap_or_default();
    if event_type != "onMessageAdded" {
        return Ok(None);
    }
    let conversation_sid = get("ConversationSid")
        .filter(|s| looks_like_sid(s, "CH"))
        .ok_or_else(|| ChatError::bad_request("ConversationSid is missing or not a CH… SID."))?;
    let message_sid = get("MessageSid")
        .filter(|s| looks_like_sid(s, "IM"))
        .ok_or_else(|| ChatError::bad_request("MessageSid is missing or not an IM… SID."))?;
    let body = match (get("Body").filter(|b| !b.is_empty()), get("Media")) {
        (Some(body), _) => body.to_owned(),
        (None, Some(_)) => "(an attachment)".to_owned(),
        (None, None) => String::new(),
    };
    Ok(Some(MessageEvent {
        conversation_sid: conversation_sid.to_owned(),
        message_sid: message_sid.to_owned(),
        author: get("Author")
            .or(get("ClientIdentity"))
            .unwrap_or("system")
            .to_owned(),
        body,
        date_created: get("DateCreated").unwrap_or_default().to_owned(),
        index: get("Index").and_then(|i| i.trim().parse().ok()),
    }))
}

fn bad_signature() -> ChatError {
    ChatError::access_denied("The X-Twilio-Signature does not match this request.")
}
