//! An emulator of one Twilio Conversation Service, over real HTTP: the REST resources the
//! product uses, answered as Twilio answers them, statuses and error codes included
//! (`shared/twilio/twilio.md` section 2): 401/20003 without the right Basic credentials,
//! 404/20404 for what does not exist, 409 with 50201 (user), 50353 (conversation unique
//! name), 50433 (participant), and 50391 for a create that meets another still under way.
//!
//! One emulator for the tests and for local mode (`adr/019`): the tests' stand-in
//! (`test-support`) puts Prism's check of Twilio's OpenAPI spec, injected faults and latency
//! in front of it; `chatctl serve` serves it as the local Twilio.
//!
//! Files by what they hold: `routes.rs` (which request goes where), `users.rs`,
//! `conversations.rs`, `service.rs` (each resource's answers), `json.rs` (their JSON),
//! `state.rs` (what it remembers), `wire.rs` (forms, errors, answers).

pub mod browser;
mod conversations;
pub mod events;
mod json;
pub mod messages;
#[cfg(feature = "sqlite")]
pub mod persist;
mod routes;
mod service;
pub mod state;
mod users;
mod webhook;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;

pub use messages::NewMessage;
pub use state::ServiceState;
pub use webhook::{Source, sign_form};
pub use wire::{error_body, iso, now_iso, twilio_error};

/// The account, API key and Conversation Service the emulator is (fixed: one service).
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const API_KEY_SID: &str = "SKfedcba9876543210fedcba9876543210";
pub const CHAT_SERVICE_SID: &str = "IS00112233445566778899aabbccddeeff";

/// One Conversation Service.
pub struct Emulator {
    /// The API key secret: Basic credentials of the REST API, and what signs the access
    /// tokens the browser API takes.
    api_secret: String,
    authorization: String,
    base_url: String,
    state: Mutex<ServiceState>,
    create_window: Mutex<Duration>,
    next_sid: AtomicU64,
    /// Signs the service's webhooks; none are sent without it.
    auth_token: Option<String>,
    webhook_http: reqwest::Client,
    /// What happens in the service, for the browser API's event streams.
    events: tokio::sync::broadcast::Sender<events::Event>,
    /// Where local mode keeps the state (`with_store`); in memory without it.
    #[cfg(feature = "sqlite")]
    store: Option<persist::Store>,
}

/// A request the emulator let in: its path below the service, as segments and as text.
pub struct Admitted {
    pub rest: Vec<String>,
    /// `/Conversations/CH…`: for Twilio's 404 messages and the tests' log.
    pub path: String,
}

impl Emulator {
    /// A fresh service with Twilio's four default roles, accepting [`API_KEY_SID`] with
    /// `api_secret`, whose resources' URLs start with `base_url`.
    pub fn new(api_secret: &str, base_url: impl Into<String>) -> Self {
        let emulator = Self {
            api_secret: api_secret.to_owned(),
            authorization: basic_authorization(api_secret),
            base_url: base_url.into(),
            state: Mutex::new(ServiceState::default()),
            create_window: Mutex::new(Duration::ZERO),
            next_sid: AtomicU64::new(1),
            auth_token: None,
            webhook_http: webhook::webhook_http(),
            events: tokio::sync::broadcast::channel(events::BUFFERED).0,
            #[cfg(feature = "sqlite")]
            store: None,
        };
        emulator.add_default_roles();
        emulator
    }

    /// What it remembers (the tests seed and inspect it).
    pub fn state(&self) -> MutexGuard<'_, ServiceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new SID with Twilio's `prefix` (`US`, `CH`, `MB`, …).
    pub fn sid(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:032x}",
            self.next_sid.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// How long a create is under way; a create of the same thing meanwhile gets 50391
    /// (conversations) or the resource's "already exists" code. Zero unless a test sets it.
    pub fn set_create_window(&self, window: Duration) {
        *self.create_window.lock().unwrap_or_else(|p| p.into_inner()) = window;
    }

    /// A create whose `key` the caller put in `creating`: waits out the create window (a
    /// test's race), and holds the key until [`Creating::done`], or until the create is given
    /// up (a caller that went away mid-create must not leave "already exists" behind).
    pub(crate) async fn under_way(&self, key: Option<String>) -> Creating<'_> {
        let creating = Creating {
            emulator: self,
            key,
        };
        let window = *self.create_window.lock().unwrap_or_else(|p| p.into_inner());
        if !window.is_zero() {
            tokio::time::sleep(window).await;
        }
        creating
    }

    /// Authenticates a request (401/20003 without the API key's Basic credentials) and
    /// finds it below this service's path (404/20404 elsewhere).
    pub fn admit(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        segments: &[String],
    ) -> Result<Admitted, Response> {
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == self.authorization.as_bytes());
        if !authorized {
            return Err(twilio_error(401, 20003, "Authenticate"));
        }
        match segments {
            [v1, services, service, rest @ ..]
                if v1 == "v1" && services == "Services" && service == CHAT_SERVICE_SID =>
            {
                Ok(Admitted {
                    rest: rest.to_vec(),
                    path: format!("/{}", rest.join("/")),
                })
            }
            _ => Err(wire::not_found(uri.path())),
        }
    }

    /// The answer to an admitted request.
    pub async fn answer_admitted(
        &self,
        method: &Method,
        admitted: &Admitted,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let webhook_enabled = headers
            .get("X-Twilio-Webhook-Enabled")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let rest: Vec<&str> = admitted.rest.iter().map(String::as_str).collect();
        let answer = self
            .route(method, &rest, body, &query, webhook_enabled, &admitted.path)
            .await;
        if method != Method::GET {
            self.persist();
        }
        answer
    }

    /// The answer to a request, as Twilio would give it.
    pub async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response {
        match self.admit(uri, headers, &segments(uri)) {
            Ok(admitted) => {
                self.answer_admitted(method, &admitted, uri, headers, body)
                    .await
            }
            Err(refused) => refused,
        }
    }

    /// The state kept in `dir` (local mode's data directory; made on first start, owner-only),
    /// and kept there from now on: a restart keeps the conversations, their participants
    /// and their history.
    #[cfg(feature = "sqlite")]
    pub fn with_store(mut self, dir: &std::path::Path) -> Result<Self, String> {
        let (store, loaded) = persist::Store::open(dir)?;
        if let Some(state) = loaded {
            self.next_sid = AtomicU64::new(state.highest_sid() + 1);
            *self.state() = state;
        }
        self.store = Some(store);
        self.persist();
        Ok(self)
    }

    /// Writes what changed (local mode); nothing without a store.
    pub(crate) fn persist(&self) {
        #[cfg(feature = "sqlite")]
        if let Some(store) = &self.store {
            let snapshot = persist::Snapshot::of(&self.state());
            store.save(&snapshot);
        }
    }

    /// Writes an added message (local mode); nothing without a store.
    pub(crate) fn unpersist_message(&self, _conversation: &str, _index: u64) {
        #[cfg(feature = "sqlite")]
        if let Some(store) = &self.store {
            store.remove_message(_conversation, _index);
        }
    }

    pub(crate) fn persist_message(&self, _conversation: &str, _message: &state::MessageRec) {
        #[cfg(feature = "sqlite")]
        if let Some(store) = &self.store {
            store.add_message(_conversation, _message);
        }
    }

    fn add_default_roles(&self) {
        let mut state = self.state();
        for (name, kind) in [
            ("service admin", "service"),
            ("service user", "service"),
            ("channel admin", "conversation"),
            ("channel user", "conversation"),
        ] {
            let sid = self.sid("RL");
            state.roles.push(state::RoleRec {
                sid,
                friendly_name: name.into(),
                kind: kind.into(),
                permissions: vec![],
            });
        }
        state.default_service_role = Some(state.roles[1].sid.clone());
        state.default_conversation_role = Some(state.roles[3].sid.clone());
        state.default_creator_role = Some(state.roles[2].sid.clone());
    }
}

/// A create under way (see [`Emulator::under_way`]).
pub(crate) struct Creating<'a> {
    emulator: &'a Emulator,
    key: Option<String>,
}

impl Creating<'_> {
    /// The create is done: its key leaves `state` (whose lock the caller holds).
    pub(crate) fn done(mut self, state: &mut ServiceState) {
        if let Some(key) = self.key.take() {
            state.creating.remove(&key);
        }
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.emulator.state().creating.remove(&key);
        }
    }
}

/// A request path's segments, percent-decoded.
pub fn segments(uri: &Uri) -> Vec<String> {
    uri.path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// The `Authorization` header Twilio's clients send with [`API_KEY_SID`] and `api_secret`.
pub fn basic_authorization(api_secret: &str) -> String {
    use base64::Engine as _;
    let credentials = format!("{API_KEY_SID}:{api_secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[cfg(test)]
mod tests;
