//! Signing Twilio webhooks as Twilio does (`shared/twilio/twilio.md` section 3), with the
//! Conversations emulator's signer (written apart from the product's checker), checked
//! against Twilio's vectors in its tests.

/// The auth token tests configure (`TWILIO_AUTH_TOKEN`).
pub const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// `X-Twilio-Signature` of a form POST to `url` with `params`: the emulator's signer, which
/// the tests below hold to Twilio's vectors.
pub fn sign_form(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    conversations_emulator::sign_form(auth_token, url, params)
}

/// The form body of those parameters.
pub fn form_body(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A text `from` a person to the deployment's Messaging Service, as Twilio posts it to the
/// service's incoming-message webhook (without Advanced Opt-Out: no `OptOutType`).
pub fn incoming_sms<'a>(
    message_sid: &'a str,
    from: &'a str,
    body: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("AccountSid", crate::ACCOUNT_SID),
        ("ApiVersion", "2010-04-01"),
        ("Body", body),
        ("From", from),
        ("FromCountry", "US"),
        ("MessageSid", message_sid),
        ("MessagingServiceSid", crate::sms::MESSAGING_SERVICE_SID),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", message_sid),
        ("SmsSid", message_sid),
        ("SmsStatus", "received"),
        ("To", "+14155550000"),
        ("ToCountry", "US"),
    ]
}

/// An `onMessageAdded` as Twilio posts it, for the conversation's first message.
pub fn on_message_added<'a>(
    conversation_sid: &'a str,
    message_sid: &'a str,
    author: &'a str,
    body: &'a str,
) -> Vec<(&'static str, &'a str)> {
    on_message_added_at(conversation_sid, message_sid, author, body, "0")
}

/// An `onMessageAdded` for the message at `index` in its conversation.
pub fn on_message_added_at<'a>(
    conversation_sid: &'a str,
    message_sid: &'a str,
    author: &'a str,
    body: &'a str,
    index: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("AccountSid", crate::ACCOUNT_SID),
        ("Attributes", "{}"),
        ("Author", author),
        ("Body", body),
        ("ChatServiceSid", crate::CHAT_SERVICE_SID),
        ("ClientIdentity", author),
        ("ConversationSid", conversation_sid),
        ("DateCreated", "2026-11-22T10:00:00.000Z"),
        ("EventType", "onMessageAdded"),
        ("Index", index),
        ("MessageSid", message_sid),
        ("RetryCount", "0"),
        ("Source", "SDK"),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The signer signs as Twilio's own library does.
    #[test]
    fn matches_twilios_form_vectors() {
        // Read at run time: an include from outside this package would be tracked by a path
        // that a fresh clone no longer has.
        let path = crate::workspace_root()
            .join("functions/context-chat/tests/fixtures/twilio-vectors.json");
        let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut checked = 0;
        for v in all["webhook_signatures"].as_array().unwrap() {
            if v["kind"] != "form" || v.get("auth_token").is_none() {
                continue;
            }
            let params: Vec<(&str, &str)> = v["params"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect();
            let signature = super::sign_form(
                v["auth_token"].as_str().unwrap(),
                v["url"].as_str().unwrap(),
                &params,
            );
            assert_eq!(signature, v["expected_signature"], "{}", v["name"]);
            checked += 1;
        }
        assert_eq!(checked, 3);
    }
}
