//! Twilio's webhooks, on one URL: signature first, then the `onMessageAdded` fields the
//! notifier needs (the Conversation Service's post-event webhook), or a STOP or START a
//! person texted back (the Messaging Service's incoming-message webhook). Other events and
//! texts are acknowledged and ignored; Twilio may add parameters at any time, so unknown
//! ones are ignored too (they are in the signature all the same).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::address::PhoneNumber;
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

/// A person texted STOP (or START) back to the Messaging Service: what that number may be
/// sent changes (issue 30, L5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsReply {
    /// The incoming message's SID (`SM…`): a repeated delivery is handled once.
    pub message_sid: String,
    pub from: PhoneNumber,
    /// START (or YES, UNSTOP): the number takes texts again; else it replied STOP.
    pub opt_in: bool,
}

/// Twilio's default opt-out and opt-in keywords, for a service without Advanced Opt-Out
/// (which names the kind itself in `OptOutType`).
const OPT_OUT_WORDS: [&str; 9] = [
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
const OPT_IN_WORDS: [&str; 3] = ["START", "YES", "UNSTOP"];

/// What a signed webhook asks the notifier to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Message(MessageEvent),
    SmsReply(SmsReply),
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
    /// A STOP or START, queued for the notifier.
    ReplyQueued {
        message_sid: String,
    },
    /// Signed, but not an event the notifier acts on.
    Ignored {
        event_type: String,
    },
}

/// Twilio's message bodies are at most 32 KiB of text; form encoding can triple that.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// Checks the signature and reads what the notifier is to do: a message event or an SMS
/// reply. `AccessDenied` for a missing or wrong signature (the HTTP door answers 403),
/// `BadRequest` for a signed request that is not a usable event.
pub fn read_event(
    request: &WebhookRequest<'_>,
    checker: &SignatureChecker,
) -> Result<Option<Inbound>> {
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
    if event_type.is_empty() && get("MessagingServiceSid").is_some() {
        return sms_reply(&get).map(|r| r.map(Inbound::SmsReply));
    }
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
    Ok(Some(Inbound::Message(MessageEvent {
        conversation_sid: conversation_sid.to_owned(),
        message_sid: message_sid.to_owned(),
        author: get("Author")
            .or(get("ClientIdentity"))
            .unwrap_or("system")
            .to_owned(),
        body,
        date_created: get("DateCreated").unwrap_or_default().to_owned(),
        index: get("Index").and_then(|i| i.trim().parse().ok()),
    })))
}

/// An incoming text: a STOP or START (by Advanced Opt-Out's `OptOutType`, else by Twilio's
/// default keywords, the whole text); any other text is ignored.
fn sms_reply<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<SmsReply>> {
    let kind = match get("OptOutType").map(|t| t.trim().to_ascii_uppercase()) {
        Some(t) if t == "STOP" => Some(false),
        Some(t) if t == "START" => Some(true),
        Some(_) => None,
        None => {
            let said = get("Body").unwrap_or_default().trim().to_ascii_uppercase();
            if OPT_OUT_WORDS.contains(&said.as_str()) {
                Some(false)
            } else if OPT_IN_WORDS.contains(&said.as_str()) {
                Some(true)
            } else {
                None
            }
        }
    };
    let Some(opt_in) = kind else {
        return Ok(None);
    };
    let message_sid = get("MessageSid")
        .or(get("SmsSid"))
        .filter(|s| looks_like_sid(s, "SM") || looks_like_sid(s, "MM"))
        .ok_or_else(|| ChatError::bad_request("MessageSid is missing or not an SM… SID."))?;
    let from = PhoneNumber::parse(get("From").unwrap_or_default())
        .map_err(|_| ChatError::bad_request("From is not a phone number in E.164 form."))?;
    Ok(Some(SmsReply {
        message_sid: message_sid.to_owned(),
        from,
        opt_in,
    }))
}

fn bad_signature() -> ChatError {
    ChatError::access_denied("The X-Twilio-Signature does not match this request.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(params: &[(&str, &str)]) -> Result<Option<SmsReply>> {
        let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        sms_reply(&get)
    }

    #[test]
    fn stop_and_start_by_twilios_words_or_its_opt_out_type_and_nothing_else() {
        let sid = ("MessageSid", "SM00000000000000000000000000000001");
        let from = ("From", "+14155550101");
        for (body, opt_in) in [
            ("stop", false),
            (" Unsubscribe ", false),
            ("STOP ALL", false),
            ("yes", true),
            ("UNSTOP", true),
        ] {
            let got = reply(&[sid, from, ("Body", body)]).unwrap().unwrap();
            assert_eq!(got.opt_in, opt_in, "{body}");
            assert_eq!(got.from.as_str(), "+14155550101");
        }
        for body in ["stop it", "please start", "", "HELP"] {
            assert_eq!(reply(&[sid, from, ("Body", body)]).unwrap(), None, "{body}");
        }
        // Advanced Opt-Out names the kind (a service's own keywords), whatever the text says.
        let got = reply(&[sid, from, ("Body", "arrêt"), ("OptOutType", "STOP")])
            .unwrap()
            .unwrap();
        assert!(!got.opt_in);
        assert_eq!(
            reply(&[sid, from, ("Body", "STOP"), ("OptOutType", "HELP")]).unwrap(),
            None
        );
        // A STOP without a usable sender or SID is a bad request, never a guess.
        let err = reply(&[sid, ("From", "alex"), ("Body", "STOP")]).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::BadRequest);
        assert!(reply(&[from, ("Body", "STOP")]).is_err());
    }
}
