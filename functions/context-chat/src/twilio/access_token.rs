//! Twilio access tokens for the Conversations SDK (`shared/twilio/twilio.md` section 1).
//!
//! Hand-rolled rather than built with a JWT library so that the bytes match those of
//! twilio-python (sorted header keys, its payload key order) and the header and HMAC key
//! are prepared once per settings load, not per token.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Twilio rejects access tokens that live longer than a day (error 20157).
pub const MAX_TTL_SECS: u64 = 24 * 60 * 60;
/// The shortest lifetime the settings take: Twilio's SDK warns a minute before a token
/// expires (`tokenAboutToExpire`), and a client needs that minute and more to fetch a new
/// one; shorter tokens would have clients refreshing all the time.
pub const MIN_TTL_SECS: u64 = 5 * 60;
/// The old integration's TTL, kept as the default.
pub const DEFAULT_TTL_SECS: u64 = MAX_TTL_SECS;

/// twilio-python's header, keys sorted as PyJWT writes them.
const HEADER_JSON: &str = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;

/// Mints access tokens for one Twilio account, API key and Conversation Service.
pub struct AccessTokenMinter {
    account_sid: String,
    api_key_sid: String,
    chat_service_sid: String,
    /// Mobile apps' push notifications (`CR…`), in every chat grant when set.
    push_credential_sid: Option<String>,
    ttl_secs: u64,
    key: hmac::Key,
    header_b64: String,
}

/// What a token grants: the identity, and optionally the endpoint id of the old integration.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub identity: &'a str,
    pub endpoint_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Payload<'a> {
    jti: &'a str,
    grants: Grants<'a>,
    iss: &'a str,
    exp: u64,
    nbf: u64,
    sub: &'a str,
}

#[derive(Serialize)]
struct Grants<'a> {
    chat: ChatGrant<'a>,
    identity: &'a str,
}

#[derive(Serialize)]
struct ChatGrant<'a> {
    service_sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_credential_sid: Option<&'a str>,
}

impl AccessTokenMinter {
    /// `ttl_secs` is clamped to 1 s ..= 24 h; settings reject values outside that range
    /// before they get here.
    pub fn new(
        account_sid: &str,
        api_key_sid: &str,
        api_secret: &SecretString,
        chat_service_sid: &str,
        ttl_secs: u64,
    ) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            api_key_sid: api_key_sid.to_owned(),
            chat_service_sid: chat_service_sid.to_owned(),
            push_credential_sid: None,
            ttl_secs: ttl_secs.clamp(1, MAX_TTL_SECS),
            key: hmac::Key::new(hmac::HMAC_SHA256, api_secret.expose_secret().as_bytes()),
            header_b64: URL_SAFE_NO_PAD.encode(HEADER_JSON),
        }
    }

    /// Puts `push_credential_sid` in every chat grant, after `endpoint_id` as Twilio's
    /// libraries do.
    pub fn with_push_credential(mut self, sid: Option<&str>) -> Self {
        self.push_credential_sid = sid.map(str::to_owned);
        self
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A token valid from `now` (unix seconds) for the configured TTL.
    pub fn mint(&self, grant: Grant<'_>, now: u64) -> String {
        let jti = format!("{}-{now}", self.api_key_sid);
        let payload = Payload {
            jti: &jti,
            grants: Grants {
                chat: ChatGrant {
                    service_sid: &self.chat_service_sid,
                    endpoint_id: grant.endpoint_id,
                    push_credential_sid: self.push_credential_sid.as_deref(),
                },
                identity: grant.identity,
            },
            iss: &self.api_key_sid,
            exp: now + self.ttl_secs,
            nbf: now,
            sub: &self.account_sid,
        };
        // Serializing borrowed strings and integers into a Vec cannot fail.
        let payload_json = serde_json::to_vec(&payload).unwrap_or_default();
        let mut token = String::with_capacity(self.header_b64.len() + payload_json.len() * 2);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload_json, &mut token);
        let signature = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        token
    }
}

impl std::fmt::Debug for AccessTokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenMinter")
            .field("api_key_sid", &self.api_key_sid)
            .field("chat_service_sid", &self.chat_service_sid)
            .field("push_credential_sid", &self.push_credential_sid)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}
