//! A stateful stand-in for Twilio's Conversations API (one Conversation Service), on
//! loopback over real HTTP. It answers as Twilio does, statuses and error codes included
//! (`shared/twilio/twilio.md` section 2): 401/20003 without the right Basic credentials,
//! 404/20404 for what does not exist, 409 with 50201 (user), 50353 (conversation unique
//! name), 50433 (participant), and 50391 for a create that meets another still under way.
//!
//! Every request is first shown to Prism with Twilio's OpenAPI spec; one the spec does not
//! allow is answered 400 and recorded, and a stand-in with such violations fails its test
//! when dropped. Tests can inject failures (429 with `Retry-After`, 5xx), slow it down to
//! make requests overlap, seed and inspect its state, and count sequential round trips.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::prism::Prism;
use crate::{ACCOUNT_SID, API_KEY_SID, CHAT_SERVICE_SID};

/// The API key secret the stand-in accepts with [`API_KEY_SID`].
pub const API_SECRET: &str = "stand-in-api-secret";

/// A failure to answer instead of the real one, `times` times, to requests whose method
/// and path match.
#[derive(Debug, Clone)]
pub struct Fault {
    method: Option<Method>,
    path_contains: String,
    status: u16,
    code: u32,
    times: usize,
    retry_after: Option<u64>,
    delay: Duration,
}

impl Fault {
    pub fn new(status: u16, code: u32) -> Self {
        Self {
            method: None,
            path_contains: String::new(),
            status,
            code,
            times: 1,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    /// Only requests with this method whose path contains `path_contains`.
    pub fn on(mut self, method: Method, path_contains: &str) -> Self {
        self.method = Some(method);
        self.path_contains = path_contains.to_owned();
        self
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Answers only after `delay`: a Twilio that hangs.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

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

#[derive(Debug, Clone)]
struct UserRec {
    sid: String,
    identity: String,
    is_online: Option<bool>,
}

#[derive(Debug, Clone)]
struct ParticipantRec {
    sid: String,
    identity: String,
}

#[derive(Debug, Clone)]
struct ConversationRec {
    sid: String,
    unique_name: Option<String>,
    friendly_name: Option<String>,
    attributes: String,
    participants: Vec<ParticipantRec>,
}

#[derive(Debug, Clone)]
struct RoleRec {
    sid: String,
    friendly_name: String,
    kind: String,
    permissions: Vec<String>,
}

struct ServiceState {
    users: Vec<UserRec>,
    conversations: Vec<ConversationRec>,
    /// Unique names (and identities, participant keys) whose create is under way.
    creating: HashSet<String>,
    roles: Vec<RoleRec>,
    default_service_role: Option<String>,
    default_conversation_role: Option<String>,
    default_creator_role: Option<String>,
    reachability: bool,
    post_webhook_url: Option<String>,
    webhook_method: String,
    webhook_filters: Vec<String>,
}

struct Inner {
    authorization: String,
    /// `None` only for benchmarks, where Prism's round trip would be measured as ours.
    prism_url: Option<String>,
    http: reqwest::Client,
    base_url: String,
    state: Mutex<ServiceState>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<Recorded>>,
    violations: Mutex<Vec<String>>,
    latency: Mutex<Duration>,
    create_window: Mutex<Duration>,
    next_sid: AtomicU64,
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
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY_SID}:{API_SECRET}"));
        let inner = Arc::new(Inner {
            authorization: format!("Basic {credentials}"),
            prism_url: prism.as_ref().map(|p| p.url().to_owned()),
            http: reqwest::Client::new(),
            base_url: format!("http://{addr}"),
            state: Mutex::new(ServiceState::new()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
            create_window: Mutex::new(Duration::ZERO),
            next_sid: AtomicU64::new(1),
        });
        {
            let mut state = inner.state.lock().unwrap();
            for (name, kind) in [
                ("service admin", "service"),
                ("service user", "service"),
                ("channel admin", "conversation"),
                ("channel user", "conversation"),
            ] {
                let sid = inner.sid("RL");
                state.roles.push(RoleRec {
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
        let app = Router::new().fallback(handle).with_state(inner.clone());
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
        vec![
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.into()),
            ("TWILIO_API_KEY", API_KEY_SID.into()),
            ("TWILIO_API_SECRET", API_SECRET.into()),
            ("TWILIO_CHAT_SERVICE_SID", CHAT_SERVICE_SID.into()),
            ("TWILIO_API_BASE_URL", self.base_url()),
        ]
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
        *self.inner.latency.lock().unwrap() = latency;
    }

    /// How long a create is under way; a create of the same thing meanwhile gets 50391
    /// (conversations) or the resource's "already exists" code.
    pub fn set_create_window(&self, window: Duration) {
        *self.inner.create_window.lock().unwrap() = window;
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
    /// many round trips a caller waited for, one after the other.
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
        let state = self.inner.state.lock().unwrap();
        state.users.iter().map(|u| u.identity.clone()).collect()
    }

    /// Unique names of all conversations.
    pub fn conversation_names(&self) -> Vec<String> {
        let state = self.inner.state.lock().unwrap();
        state
            .conversations
            .iter()
            .filter_map(|c| c.unique_name.clone())
            .collect()
    }

    /// The SID (CH…) of the conversation with this unique name.
    pub fn conversation_sid(&self, unique_name: &str) -> Option<String> {
        let state = self.inner.state.lock().unwrap();
        state.conversation(unique_name).map(|c| c.sid.clone())
    }

    pub fn conversation_attributes(&self, unique_name: &str) -> Option<Value> {
        let state = self.inner.state.lock().unwrap();
        state
            .conversation(unique_name)
            .map(|c| serde_json::from_str(&c.attributes).unwrap_or(Value::Null))
    }

    /// Identities of a conversation's participants.
    pub fn participants(&self, unique_name: &str) -> Vec<String> {
        let state = self.inner.state.lock().unwrap();
        state
            .conversation(unique_name)
            .map(|c| c.participants.iter().map(|p| p.identity.clone()).collect())
            .unwrap_or_default()
    }

    /// Unique names of the conversations an identity is in.
    pub fn memberships(&self, identity: &str) -> Vec<String> {
        let state = self.inner.state.lock().unwrap();
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
        let sid = self.inner.sid("US");
        let mut state = self.inner.state.lock().unwrap();
        if state.user(identity).is_none() {
            state.users.push(UserRec {
                sid,
                identity: identity.into(),
                is_online: None,
            });
        }
    }

    pub fn set_online(&self, identity: &str, online: Option<bool>) {
        let mut state = self.inner.state.lock().unwrap();
        if let Some(user) = state.users.iter_mut().find(|u| u.identity == identity) {
            user.is_online = online;
        }
    }

    /// A conversation made by someone else (the old integration, a console user).
    pub fn add_conversation(&self, unique_name: &str, attributes: &str) {
        let sid = self.inner.sid("CH");
        let mut state = self.inner.state.lock().unwrap();
        state.conversations.push(ConversationRec {
            sid,
            unique_name: Some(unique_name.into()),
            friendly_name: Some(unique_name.into()),
            attributes: attributes.into(),
            participants: vec![],
        });
    }

    pub fn add_participant(&self, unique_name: &str, identity: &str) {
        self.add_user(identity);
        let sid = self.inner.sid("MB");
        let mut state = self.inner.state.lock().unwrap();
        let conversation = state
            .conversation_mut(unique_name)
            .expect("no such conversation");
        conversation.participants.push(ParticipantRec {
            sid,
            identity: identity.into(),
        });
    }

    /// A role's type and permissions, by friendly name.
    pub fn role(&self, friendly_name: &str) -> Option<(String, Vec<String>)> {
        let state = self.inner.state.lock().unwrap();
        state
            .roles
            .iter()
            .find(|r| r.friendly_name == friendly_name)
            .map(|r| (r.kind.clone(), r.permissions.clone()))
    }

    /// Changes a role as someone in Twilio's console would.
    pub fn set_role_permissions(&self, friendly_name: &str, permissions: &[&str]) {
        let mut state = self.inner.state.lock().unwrap();
        let role = state
            .roles
            .iter_mut()
            .find(|r| r.friendly_name == friendly_name)
            .expect("no such role");
        role.permissions = permissions.iter().map(|p| p.to_string()).collect();
    }

    pub fn set_webhook_filters(&self, filters: &[&str]) {
        let mut state = self.inner.state.lock().unwrap();
        state.webhook_filters = filters.iter().map(|f| f.to_string()).collect();
    }

    pub fn role_count(&self) -> usize {
        self.inner.state.lock().unwrap().roles.len()
    }

    /// The service configuration, as Twilio would answer a fetch.
    pub fn configuration(&self) -> Value {
        let state = self.inner.state.lock().unwrap();
        self.inner.configuration_json(&state)
    }

    pub fn webhooks(&self) -> Value {
        let state = self.inner.state.lock().unwrap();
        self.inner.webhooks_json(&state)
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

impl ServiceState {
    fn new() -> Self {
        Self {
            users: vec![],
            conversations: vec![],
            creating: HashSet::new(),
            roles: vec![],
            default_service_role: None,
            default_conversation_role: None,
            default_creator_role: None,
            reachability: false,
            post_webhook_url: None,
            webhook_method: "POST".into(),
            webhook_filters: vec![],
        }
    }

    fn user(&self, sid_or_identity: &str) -> Option<&UserRec> {
        self.users
            .iter()
            .find(|u| u.sid == sid_or_identity || u.identity == sid_or_identity)
    }

    fn conversation(&self, sid_or_name: &str) -> Option<&ConversationRec> {
        self.conversations
            .iter()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }

    fn conversation_mut(&mut self, sid_or_name: &str) -> Option<&mut ConversationRec> {
        self.conversations
            .iter_mut()
            .find(|c| c.sid == sid_or_name || c.unique_name.as_deref() == Some(sid_or_name))
    }
}

/// Twilio's legacy error body.
fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(path: &str) -> Response {
    twilio_error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn fields<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let below_service = segments.get(3..).map(|s| s.join("/")).unwrap_or_default();
    let query = uri.query().unwrap_or("").to_owned();

    let response = inner
        .answer(&method, &uri, &headers, &body, &segments)
        .await;
    inner.log.lock().unwrap().push(Recorded {
        method,
        path: below_service,
        query,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        started,
        ended: Instant::now(),
    });
    response
}

impl Inner {
    fn sid(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:032x}",
            self.next_sid.fetch_add(1, Ordering::SeqCst)
        )
    }

    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        segments: &[String],
    ) -> Response {
        if let Some(violation) = self.check_with_prism(method, uri, headers, body).await {
            let message = format!("{method} {}: {violation}", uri.path());
            self.violations.lock().unwrap().push(message.clone());
            return twilio_error(
                400,
                0,
                &format!("not allowed by Twilio's OpenAPI spec: {message}"),
            );
        }
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == self.authorization.as_bytes());
        if !authorized {
            return twilio_error(401, 20003, "Authenticate");
        }
        let all: Vec<&str> = segments.iter().map(String::as_str).collect();
        let ["v1", "Services", service, rest @ ..] = all.as_slice() else {
            return not_found(uri.path());
        };
        if *service != CHAT_SERVICE_SID {
            return not_found(uri.path());
        }
        let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        let path = format!("/{}", rest.join("/"));
        if let Some(fault) = self.take_fault(method, &path) {
            tokio::time::sleep(fault.delay).await;
            let mut response = twilio_error(fault.status, fault.code, "injected by the test");
            if let Some(seconds) = fault.retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&seconds.to_string()).unwrap(),
                );
            }
            return response;
        }
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency.mul_f64(random_fraction())).await;
        }
        let form = form(body);
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (method.as_str(), rest.as_slice()) {
            ("POST", ["Users"]) => self.create_user(&form).await,
            ("GET", ["Users", user]) => {
                let state = self.state.lock().unwrap();
                match state.user(user) {
                    Some(u) => json_response(200, self.user_json(u)),
                    None => not_found(&path),
                }
            }
            ("GET", ["Users", user, "Conversations"]) => {
                self.user_conversations(user, &query, &path)
            }
            ("POST", ["Conversations"]) => self.create_conversation(&form).await,
            ("GET", ["Conversations", conversation]) => {
                let state = self.state.lock().unwrap();
                match state.conversation(conversation) {
                    Some(c) => json_response(200, self.conversation_json(c)),
                    None => not_found(&path),
                }
            }
            ("POST", ["Conversations", conversation]) => {
                let mut state = self.state.lock().unwrap();
                let Some(c) = state.conversation_mut(conversation) else {
                    return not_found(&path);
                };
                if let Some(attributes) = field(&form, "Attributes") {
                    c.attributes = attributes.into();
                }
                if let Some(name) = field(&form, "FriendlyName") {
                    c.friendly_name = Some(name.into());
                }
                let c = c.clone();
                json_response(200, self.conversation_json(&c))
            }
            ("GET", ["Conversations", conversation, "Participants"]) => {
                let state = self.state.lock().unwrap();
                let Some(c) = state.conversation(conversation) else {
                    return not_found(&path);
                };
                let participants: Vec<Value> = c
                    .participants
                    .iter()
                    .map(|p| self.participant_json(c, p))
                    .collect();
                json_response(
                    200,
                    json!({"participants": participants, "meta": self.meta(&path, "participants", None)}),
                )
            }
            ("POST", ["Conversations", conversation, "Participants"]) => {
                self.add_participant(conversation, &form, &path).await
            }
            ("GET", ["Conversations", conversation, "Participants", participant]) => {
                let state = self.state.lock().unwrap();
                let Some(c) = state.conversation(conversation) else {
                    return not_found(&path);
                };
                match c
                    .participants
                    .iter()
                    .find(|p| p.sid == *participant || p.identity == *participant)
                {
                    Some(p) => json_response(200, self.participant_json(c, p)),
                    None => twilio_error(404, 50432, "Participant not found"),
                }
            }
            ("DELETE", ["Conversations", conversation, "Participants", participant]) => {
                let mut state = self.state.lock().unwrap();
                let Some(c) = state.conversation_mut(conversation) else {
                    return not_found(&path);
                };
                let before = c.participants.len();
                // Update and delete take the MB… SID only.
                c.participants.retain(|p| p.sid != *participant);
                if c.participants.len() == before {
                    return twilio_error(404, 50432, "Participant not found");
                }
                StatusCode::NO_CONTENT.into_response()
            }
            ("GET", ["Roles"]) => {
                let state = self.state.lock().unwrap();
                let roles: Vec<Value> = state.roles.iter().map(|r| self.role_json(r)).collect();
                json_response(
                    200,
                    json!({"roles": roles, "meta": self.meta(&path, "roles", None)}),
                )
            }
            ("POST", ["Roles"]) => {
                let (Some(name), Some(kind)) = (field(&form, "FriendlyName"), field(&form, "Type"))
                else {
                    return twilio_error(400, 20001, "Missing required parameter");
                };
                let role = RoleRec {
                    sid: self.sid("RL"),
                    friendly_name: name.into(),
                    kind: kind.into(),
                    permissions: fields(&form, "Permission")
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                };
                let body = self.role_json(&role);
                self.state.lock().unwrap().roles.push(role);
                json_response(201, body)
            }
            ("POST", ["Roles", role]) => {
                let mut state = self.state.lock().unwrap();
                let Some(r) = state.roles.iter_mut().find(|r| r.sid == *role) else {
                    return not_found(&path);
                };
                r.permissions = fields(&form, "Permission")
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let r = r.clone();
                json_response(200, self.role_json(&r))
            }
            ("GET", ["Configuration"]) => {
                let state = self.state.lock().unwrap();
                json_response(200, self.configuration_json(&state))
            }
            ("POST", ["Configuration"]) => {
                let mut guard = self.state.lock().unwrap();
                let state = &mut *guard;
                for (name, slot) in [
                    ("DefaultChatServiceRoleSid", &mut state.default_service_role),
                    (
                        "DefaultConversationRoleSid",
                        &mut state.default_conversation_role,
                    ),
                    (
                        "DefaultConversationCreatorRoleSid",
                        &mut state.default_creator_role,
                    ),
                ] {
                    if let Some(value) = field(&form, name) {
                        *slot = Some(value.into());
                    }
                }
                if let Some(value) = field(&form, "ReachabilityEnabled") {
                    state.reachability = value == "true";
                }
                json_response(200, self.configuration_json(state))
            }
            ("GET", ["Configuration", "Webhooks"]) => {
                let state = self.state.lock().unwrap();
                json_response(200, self.webhooks_json(&state))
            }
            ("POST", ["Configuration", "Webhooks"]) => {
                let mut state = self.state.lock().unwrap();
                if let Some(url) = field(&form, "PostWebhookUrl") {
                    state.post_webhook_url = Some(url.into());
                }
                if let Some(m) = field(&form, "Method") {
                    state.webhook_method = m.to_uppercase();
                }
                let filters = fields(&form, "Filters");
                if !filters.is_empty() {
                    state.webhook_filters = filters.into_iter().map(str::to_owned).collect();
                }
                json_response(200, self.webhooks_json(&state))
            }
            _ => not_found(&path),
        }
    }

    /// Prism's verdict: `None` when the request is one Twilio's spec allows.
    async fn check_with_prism(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<String> {
        let prism_url = self.prism_url.as_ref()?;
        let url = format!(
            "{}{}",
            prism_url,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        let mut request = self.http.request(method.clone(), url).body(body.to_vec());
        for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value.clone());
            }
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Some(format!("Prism could not be asked: {e}")),
        };
        let status = response.status().as_u16();
        if status < 400 {
            return None;
        }
        let detail: Value = response.json().await.unwrap_or(Value::Null);
        let messages: Vec<String> = detail["validation"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|e| format!("{} {}", e["location"], e["message"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        Some(format!(
            "Prism {status}: {} {}",
            detail["title"].as_str().unwrap_or(""),
            if messages.is_empty() {
                detail["detail"].as_str().unwrap_or("").to_owned()
            } else {
                messages.join("; ")
            }
        ))
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let index = faults.iter().position(|f| {
            f.times > 0
                && f.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&f.path_contains)
        })?;
        faults[index].times -= 1;
        Some(faults[index].clone())
    }

    fn window(&self) -> Duration {
        *self.create_window.lock().unwrap()
    }

    async fn create_user(&self, form: &[(String, String)]) -> Response {
        let Some(identity) = field(form, "Identity").map(str::to_owned) else {
            return twilio_error(400, 50204, "Identity not provided");
        };
        let key = format!("user:{identity}");
        {
            let mut state = self.state.lock().unwrap();
            if state.user(&identity).is_some() || state.creating.contains(&key) {
                return twilio_error(409, 50201, "User already exists");
            }
            state.creating.insert(key.clone());
        }
        tokio::time::sleep(self.window()).await;
        let user = UserRec {
            sid: self.sid("US"),
            identity,
            is_online: None,
        };
        let mut state = self.state.lock().unwrap();
        state.creating.remove(&key);
        state.users.push(user.clone());
        json_response(201, self.user_json(&user))
    }

    async fn create_conversation(&self, form: &[(String, String)]) -> Response {
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
            let mut state = self.state.lock().unwrap();
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
        tokio::time::sleep(self.window()).await;
        let conversation = ConversationRec {
            sid: self.sid("CH"),
            unique_name,
            friendly_name: field(form, "FriendlyName").map(str::to_owned),
            attributes: field(form, "Attributes").unwrap_or("{}").to_owned(),
            participants: vec![],
        };
        let mut state = self.state.lock().unwrap();
        if let Some(key) = &key {
            state.creating.remove(key);
        }
        state.conversations.push(conversation.clone());
        json_response(201, self.conversation_json(&conversation))
    }

    async fn add_participant(
        &self,
        conversation: &str,
        form: &[(String, String)],
        path: &str,
    ) -> Response {
        let Some(identity) = field(form, "Identity").map(str::to_owned) else {
            return twilio_error(400, 50404, "Identity or MessagingBinding must be provided");
        };
        let key = {
            let mut state = self.state.lock().unwrap();
            let Some(c) = state.conversation(conversation) else {
                return not_found(path);
            };
            let key = format!("participant:{}:{identity}", c.sid);
            if c.participants.iter().any(|p| p.identity == identity)
                || state.creating.contains(&key)
            {
                return twilio_error(409, 50433, "Participant already exists");
            }
            state.creating.insert(key.clone());
            key
        };
        tokio::time::sleep(self.window()).await;
        let participant = ParticipantRec {
            sid: self.sid("MB"),
            identity: identity.clone(),
        };
        let user_sid = self.sid("US");
        let mut state = self.state.lock().unwrap();
        state.creating.remove(&key);
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
        let c = c.clone();
        json_response(201, self.participant_json(&c, &participant))
    }

    fn user_conversations(&self, user: &str, query: &[(String, String)], path: &str) -> Response {
        let state = self.state.lock().unwrap();
        let Some(u) = state.user(user) else {
            return not_found(path);
        };
        let page_size: usize = query
            .iter()
            .find(|(k, _)| k == "PageSize")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(50);
        let offset: usize = query
            .iter()
            .find(|(k, _)| k == "PageToken")
            .and_then(|(_, v)| v.strip_prefix("PT")?.parse().ok())
            .unwrap_or(0);
        let all: Vec<Value> = state
            .conversations
            .iter()
            .filter_map(|c| {
                let p = c.participants.iter().find(|p| p.identity == u.identity)?;
                Some(json!({
                    "account_sid": ACCOUNT_SID,
                    "chat_service_sid": CHAT_SERVICE_SID,
                    "conversation_sid": c.sid,
                    "unread_messages_count": 0,
                    "last_read_message_index": null,
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

    fn meta(&self, path: &str, key: &str, next: Option<String>) -> Value {
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

    fn user_json(&self, u: &UserRec) -> Value {
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
            "is_online": u.is_online,
            "is_notifiable": null,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "url": url,
            "links": {"user_conversations": format!("{url}/Conversations")},
        })
    }

    fn conversation_json(&self, c: &ConversationRec) -> Value {
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
            "state": "active",
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

    fn participant_json(&self, c: &ConversationRec, p: &ParticipantRec) -> Value {
        json!({
            "sid": p.sid,
            "account_sid": ACCOUNT_SID,
            "chat_service_sid": CHAT_SERVICE_SID,
            "conversation_sid": c.sid,
            "identity": p.identity,
            "attributes": "{}",
            "messaging_binding": null,
            "role_sid": null,
            "date_created": "2026-11-22T00:00:00Z",
            "date_updated": "2026-11-22T00:00:00Z",
            "url": format!("{}/v1/Services/{CHAT_SERVICE_SID}/Conversations/{}/Participants/{}", self.base_url, c.sid, p.sid),
            "last_read_message_index": null,
            "last_read_timestamp": null,
        })
    }

    fn role_json(&self, r: &RoleRec) -> Value {
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

    fn configuration_json(&self, s: &ServiceState) -> Value {
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

    fn webhooks_json(&self, s: &ServiceState) -> Value {
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

fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}
