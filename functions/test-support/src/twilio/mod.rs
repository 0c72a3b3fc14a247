//! The tests' Twilio: the product's Conversations emulator (`conversations-emulator`, a
//! stateful Conversation Service on loopback over real HTTP that answers as Twilio does,
//! statuses and error codes included) with what only tests need in front of it.
//!
//! Every request is first shown to Prism with Twilio's OpenAPI spec; one the spec does not
//! allow is answered 400 and recorded, and a stand-in with such violations fails its test
//! when dropped. Tests can inject failures (429 with `Retry-After`, 5xx), slow it down to
//! make requests overlap, seed and inspect its state, and count sequential round trips.
//!
//! Files: `server.rs` (checking, recording, faults and latency around the emulator),
//! `fault.rs`.

mod fault;
mod server;

pub(crate) use conversations_emulator::error_body;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::Method;
use conversations_emulator::Emulator;
use conversations_emulator::state::{ConversationRec, ParticipantRec, UserRec};
use serde_json::Value;

pub use fault::Fault;
use server::Inner;

use crate::prism::Prism;
use crate::{ACCOUNT_SID, API_KEY_SID, CHAT_SERVICE_SID};

/// The API key secret the stand-in accepts with [`API_KEY_SID`].
pub const API_SECRET: &str = "stand-in-api-secret";

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Decoded path below `/v1/Services/{IS…}/`, e.g. `Users/alex/Conversations`.
    pub path: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    pub started: Instant,
    pub ended: Instant,
}

/// How long the stand-in waits before it answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Latency {
    None,
    /// Exactly this long: requests sent together overlap, requests sent one after the
    /// other do not, so [`TwilioStandIn::sequential_round_trips`] counts what a caller waited
    /// for, whether or not the stand-in's handler would otherwise yield.
    Fixed(Duration),
    /// A random time up to this, so that concurrent requests interleave as over the internet.
    UpTo(Duration),
}

/// The running stand-in. It stops when dropped, and then fails the test if any request
/// broke Twilio's spec.
pub struct TwilioStandIn {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
    _prism: Option<Prism>,
}

impl TwilioStandIn {
    /// A fresh Conversation Service with Twilio's four default roles.
    pub async fn start() -> Self {
        let prism = tokio::task::spawn_blocking(Prism::start).await.unwrap();
        Self::with_prism(Some(prism)).await
    }

    /// The same without Prism's check of each request: for benchmarks only, where its
    /// round trip would be counted as the client's. Tests use [`TwilioStandIn::start`].
    pub async fn start_unchecked() -> Self {
        Self::with_prism(None).await
    }

    async fn with_prism(prism: Option<Prism>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            emulator: Emulator::new(API_SECRET, format!("http://{addr}")),
            prism_url: prism.as_ref().map(|p| p.url().to_owned()),
            http: reqwest::Client::new(),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            latency: Mutex::new(Latency::None),
        });
        let app = Router::new()
            .fallback(server::handle)
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            task,
            _prism: prism,
        }
    }

    /// What `TWILIO_API_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Environment settings for a process that should talk to this stand-in.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = credentials_env();
        env.push(("TWILIO_API_BASE_URL", self.base_url()));
        env
    }

    pub fn fail(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.faults.lock().unwrap().clear();
    }

    /// Each request waits a random time up to this before it is answered, so that
    /// concurrent requests interleave as they would over the internet.
    pub fn set_latency(&self, latency: Duration) {
        *self.inner.latency.lock().unwrap() = Latency::UpTo(latency);
    }

    /// Each request is answered after exactly this long, as a Twilio that far away would
    /// answer: round trips can then be counted (and timed) the same way in tests and
    /// benchmarks, Prism in the loop or not.
    pub fn set_fixed_latency(&self, latency: Duration) {
        *self.inner.latency.lock().unwrap() = Latency::Fixed(latency);
    }

    /// How long a create is under way; a create of the same thing meanwhile gets 50391
    /// (conversations) or the resource's "already exists" code.
    pub fn set_create_window(&self, window: Duration) {
        self.inner.emulator.set_create_window(window);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.log.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.inner.log.lock().unwrap().len()
    }

    pub fn clear_log(&self) {
        self.inner.log.lock().unwrap().clear();
    }

    /// The longest chain of requests each sent after the previous one was answered: how
    /// many round trips a caller waited for, one after the other. Exact with a fixed
    /// latency ([`TwilioStandIn::set_fixed_latency`]); without one, requests a caller sent
    /// together may look sequential when the stand-in answers one before reading the next.
    pub fn sequential_round_trips(&self) -> usize {
        let mut log = self.requests();
        log.sort_by_key(|r| r.started);
        let mut depth: Vec<usize> = Vec::with_capacity(log.len());
        for (i, r) in log.iter().enumerate() {
            let before = (0..i)
                .filter(|&j| log[j].ended <= r.started)
                .map(|j| depth[j])
                .max()
                .unwrap_or(0);
            depth.push(before + 1);
        }
        depth.into_iter().max().unwrap_or(0)
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    /// The violations so far, forgotten: for a test that sends bad requests on purpose.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.violations.lock().unwrap())
    }

    pub fn user_identities(&self) -> Vec<String> {
        let state = self.inner.emulator.state();
        state.users.iter().map(|u| u.identity.clone()).collect()
    }

    /// Unique names of all conversations.
    pub fn conversation_names(&self) -> Vec<String> {
        let state = self.inner.emulator.state();
        state
            .conversations
            .iter()
            .filter_map(|c| c.unique_name.clone())
            .collect()
    }

    /// The SID (CH…) of the conversation with this unique name.
    pub fn conversation_sid(&self, unique_name: &str) -> Option<String> {
        let state = self.inner.emulator.state();
        state.conversation(unique_name).map(|c| c.sid.clone())
    }

    pub fn conversation_attributes(&self, unique_name: &str) -> Option<Value> {
        let state = self.inner.emulator.state();
        state
            .conversation(unique_name)
            .map(|c| serde_json::from_str(&c.attributes).unwrap_or(Value::Null))
    }

    /// Identities of a conversation's participants.
    pub fn participants(&self, unique_name: &str) -> Vec<String> {
        let state = self.inner.emulator.state();
        state
            .conversation(unique_name)
            .map(|c| c.participants.iter().map(|p| p.identity.clone()).collect())
            .unwrap_or_default()
    }

    /// Unique names of the conversations an identity is in.
    pub fn memberships(&self, identity: &str) -> Vec<String> {
        let state = self.inner.emulator.state();
        let mut names: Vec<String> = state
            .conversations
            .iter()
            .filter(|c| c.participants.iter().any(|p| p.identity == identity))
            .filter_map(|c| c.unique_name.clone())
            .collect();
        names.sort();
        names
    }

    pub fn add_user(&self, identity: &str) {
        let sid = self.inner.emulator.sid("US");
        let mut state = self.inner.emulator.state();
        if state.user(identity).is_none() {
            state.users.push(UserRec {
                sid,
                identity: identity.into(),
                is_online: None,
            });
        }
    }

    pub fn set_online(&self, identity: &str, online: Option<bool>) {
        let mut state = self.inner.emulator.state();
        if let Some(user) = state.users.iter_mut().find(|u| u.identity == identity) {
            user.is_online = online;
        }
    }

    /// A conversation made by someone else (the old integration, a console user).
    pub fn add_conversation(&self, unique_name: &str, attributes: &str) {
        let sid = self.inner.emulator.sid("CH");
        let mut state = self.inner.emulator.state();
        state.conversations.push(ConversationRec::new(
            sid,
            Some(unique_name.into()),
            attributes.into(),
        ));
    }

    pub fn add_participant(&self, unique_name: &str, identity: &str) {
        self.add_user(identity);
        let sid = self.inner.emulator.sid("MB");
        let mut state = self.inner.emulator.state();
        let conversation = state
            .conversation_mut(unique_name)
            .expect("no such conversation");
        conversation.participants.push(ParticipantRec {
            sid,
            identity: identity.into(),
            last_read_message_index: None,
            role_sid: None,
        });
    }

    /// What a participant's client reports after reading up to message `index`.
    pub fn set_last_read(&self, unique_name: &str, identity: &str, index: u64) {
        let mut state = self.inner.emulator.state();
        let conversation = state
            .conversation_mut(unique_name)
            .expect("no such conversation");
        let participant = conversation
            .participants
            .iter_mut()
            .find(|p| p.identity == identity)
            .expect("no such participant");
        participant.last_read_message_index = Some(index);
    }

    /// A message `author` posts in the conversation (as a client of Twilio's SDK would; no
    /// webhook).
    pub fn add_message(&self, unique_name: &str, author: &str, body: &str) {
        let new = conversations_emulator::messages::NewMessage {
            author: Some(author),
            body,
            attributes: None,
        };
        let added = self.inner.emulator.add_message(unique_name, new, None);
        assert!(
            matches!(added, Ok(Some(_))),
            "no message added to {unique_name}"
        );
    }

    /// The name of a participant's own conversation role (`None`: the service's default).
    pub fn participant_role(&self, unique_name: &str, identity: &str) -> Option<String> {
        let state = self.inner.emulator.state();
        let role = state
            .conversation(unique_name)?
            .participant(identity)?
            .role_sid
            .clone()?;
        state
            .roles
            .iter()
            .find(|r| r.sid == role)
            .map(|r| r.friendly_name.clone())
    }

    /// The conversation's title (its friendly name).
    pub fn friendly_name(&self, unique_name: &str) -> Option<String> {
        let state = self.inner.emulator.state();
        state.conversation(unique_name)?.friendly_name.clone()
    }

    /// Removes a participant behind the product's back (the Console, another tool).
    pub fn remove_participant(&self, unique_name: &str, identity: &str) {
        let mut state = self.inner.emulator.state();
        if let Some(conversation) = state.conversation_mut(unique_name) {
            conversation.participants.retain(|p| p.identity != identity);
        }
    }

    /// Adds a conversation role as `chatctl configure-twilio` makes one; `default` makes it the
    /// service's default conversation role.
    pub fn add_conversation_role(&self, friendly_name: &str, permissions: &[&str], default: bool) {
        let sid = self.inner.emulator.sid("RL");
        let mut state = self.inner.emulator.state();
        state.roles.push(conversations_emulator::state::RoleRec {
            sid: sid.clone(),
            friendly_name: friendly_name.into(),
            kind: "conversation".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        });
        if default {
            state.default_conversation_role = Some(sid);
        }
    }

    /// A role's type and permissions, by friendly name.
    pub fn role(&self, friendly_name: &str) -> Option<(String, Vec<String>)> {
        let state = self.inner.emulator.state();
        state
            .roles
            .iter()
            .find(|r| r.friendly_name == friendly_name)
            .map(|r| (r.kind.clone(), r.permissions.clone()))
    }

    /// Changes a role as someone in Twilio's console would.
    pub fn set_role_permissions(&self, friendly_name: &str, permissions: &[&str]) {
        let mut state = self.inner.emulator.state();
        let role = state
            .roles
            .iter_mut()
            .find(|r| r.friendly_name == friendly_name)
            .expect("no such role");
        role.permissions = permissions.iter().map(|p| p.to_string()).collect();
    }

    pub fn set_webhook_filters(&self, filters: &[&str]) {
        let mut state = self.inner.emulator.state();
        state.webhook_filters = filters.iter().map(|f| f.to_string()).collect();
    }

    pub fn role_count(&self) -> usize {
        self.inner.emulator.state().roles.len()
    }

    /// The service configuration, as Twilio would answer a fetch.
    pub fn configuration(&self) -> Value {
        let state = self.inner.emulator.state();
        self.inner.emulator.configuration_json(&state)
    }

    pub fn webhooks(&self) -> Value {
        let state = self.inner.emulator.state();
        self.inner.emulator.webhooks_json(&state)
    }
}

impl Drop for TwilioStandIn {
    fn drop(&mut self) {
        self.task.abort();
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "requests that break Twilio's OpenAPI spec:\n{}",
                violations.join("\n")
            );
        }
    }
}

/// The test account's Twilio settings as environment variables, without a base URL (a
/// process that provisions nothing).
pub fn credentials_env() -> Vec<(&'static str, String)> {
    vec![
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
        ("TWILIO_API_KEY", API_KEY_SID.into()),
        ("TWILIO_API_SECRET", API_SECRET.into()),
        ("TWILIO_CHAT_SERVICE_SID", CHAT_SERVICE_SID.into()),
    ]
}

/// The `Authorization` header Twilio's clients send with the test API key.
pub(crate) fn basic_authorization() -> String {
    conversations_emulator::basic_authorization(API_SECRET)
}
