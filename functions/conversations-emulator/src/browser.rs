//! Local mode's browser API, for clients that do not speak Twilio's SDK protocol (the
//! widget's local mode, curl): JSON over HTTP below `/local/v1/`, authenticated by the Twilio
//! access token the product minted (`Authorization: Bearer`; HS256 with the local API key
//! secret, `exp`/`nbf`, issued by the local API key for the local account, a chat grant for
//! this service; the identity is the token's). Only a conversation's participants read it,
//! post to it or hear of it; a refusal changes nothing.
//!
//! - `GET conversations`: mine, each with its context (the unique name), title, last message,
//!   read horizon and unread count;
//! - `GET conversations/{context}/messages?before=&limit=`: a page, oldest first (limit ≤ 100);
//! - `POST conversations/{context}/messages` `{"body", "attributes"?}`: 201 with the message
//!   (its index); the service's webhook hears of it as of an SDK client's;
//! - `DELETE conversations/{context}/messages/{index}`: my message, or anyone's for a
//!   moderator (the role's `deleteOwnMessage` / `deleteAnyMessage`); 204;
//! - `POST conversations/{context}/read` `{"index"}`: my read horizon;
//! - `POST conversations/{context}/typing`: 204, told to the others;
//! - a post or delete the participant's conversation role does not permit: 403 with Twilio's
//!   error 50107 (a reader posts nothing);
//! - `GET events`: Server-Sent Events: `ready`, `message`, `messageRemoved`, `typing`, `joined`, `left`,
//!   `membershipEnded` (mine, in a conversation: a sync or revocation removed me) and `resync`
//!   (events were missed: fetch again). A live stream makes its identity online (reachability).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::events::Event;
use crate::messages::{MAX_BODY_CHARS, NewMessage};
use crate::state::{ConversationRec, MessageRec};
use crate::webhook::Source;
use crate::{ACCOUNT_SID, API_KEY_SID, CHAT_SERVICE_SID, Emulator};

/// Where `chatctl serve` mounts it.
pub const PATH: &str = "/local/v1";
/// The most messages one page holds.
pub const MAX_PAGE: usize = 100;

/// The routes below [`PATH`].
pub fn routes(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route(&format!("{PATH}/conversations"), get(conversations))
        .route(
            &format!("{PATH}/conversations/{{context}}/messages"),
            get(messages).post(post_message),
        )
        .route(
            &format!("{PATH}/conversations/{{context}}/messages/{{index}}"),
            axum::routing::delete(remove_message),
        )
        .route(
            &format!("{PATH}/conversations/{{context}}/read"),
            post(read),
        )
        .route(
            &format!("{PATH}/conversations/{{context}}/typing"),
            post(typing),
        )
        .route(&format!("{PATH}/events"), get(events))
        .with_state(emulator)
}

/// A JSON body, or why it is not one (answered 400 by the handler, in its words).
type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The value, or the handler answers with the refusal.
macro_rules! or_refuse {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(refusal) => return refusal,
        }
    };
}

/// A refusal: its status and what it says.
fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn not_a_participant() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Only the conversation's participants may do this.",
    )
}

#[derive(Deserialize)]
struct Claims {
    grants: Grants,
}

#[derive(Deserialize)]
struct Grants {
    identity: String,
    chat: Option<ChatGrant>,
}

#[derive(Deserialize)]
struct ChatGrant {
    service_sid: String,
}

impl Emulator {
    /// The identity of the bearer's access token, or 401 (never saying more than what to fix).
    fn caller(&self, headers: &HeaderMap) -> Result<String, Response> {
        let unauthorized = |why: &str| refused(StatusCode::UNAUTHORIZED, why);
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("A Twilio access token is required (Bearer)."))?;
        let bad = || unauthorized("Not a valid access token of this service.");
        let head = jsonwebtoken::decode_header(token).map_err(|_| bad())?;
        if head.cty.as_deref() != Some("twilio-fpa;v=1") {
            return Err(bad());
        }
        let mut rules = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        rules.leeway = 5;
        rules.validate_nbf = true;
        rules.validate_aud = false;
        rules.set_issuer(&[API_KEY_SID]);
        rules.sub = Some(ACCOUNT_SID.to_owned());
        rules.set_required_spec_claims(&["exp", "iss", "sub"]);
        let key = jsonwebtoken::DecodingKey::from_secret(self.api_secret.as_bytes());
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &rules)
            .map_err(|_| bad())?
            .claims;
        let ours = claims
            .grants
            .chat
            .is_some_and(|c| c.service_sid == CHAT_SERVICE_SID);
        if !ours || claims.grants.identity.is_empty() {
            return Err(bad());
        }
        Ok(claims.grants.identity)
    }
}

fn message_json(m: &MessageRec) -> Value {
    json!({
        "sid": m.sid,
        "index": m.index,
        "author": m.author,
        "body": m.body,
        "attributes": serde_json::from_str::<Value>(&m.attributes).unwrap_or(Value::Null),
        "dateCreated": m.date_created,
    })
}

fn conversation_json(c: &ConversationRec, identity: &str) -> Value {
    let horizon = c
        .participant(identity)
        .and_then(|p| p.last_read_message_index);
    json!({
        "context": c.unique_name,
        "sid": c.sid,
        "title": c.friendly_name.as_ref().or(c.unique_name.as_ref()),
        "lastMessage": c.messages.last().map(message_json),
        "lastReadIndex": horizon,
        "unread": c.unread_after(horizon),
    })
}

async fn conversations(State(e): State<Arc<Emulator>>, headers: HeaderMap) -> Response {
    let identity = or_refuse!(e.caller(&headers));
    let state = e.state();
    let mine: Vec<Value> = state
        .conversations
        .iter()
        .filter(|c| c.participant(&identity).is_some())
        .map(|c| conversation_json(c, &identity))
        .collect();
    Json(json!({ "conversations": mine })).into_response()
}

/// The caller, and the conversation of `context` if the caller is one of its participants.
/// The caller of a request below `conversations/{context}/`, a participant of it.
struct Member {
    identity: String,
    context: String,
}

impl axum::extract::FromRequestParts<Arc<Emulator>> for Member {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        e: &Arc<Emulator>,
    ) -> Result<Self, Response> {
        // The context is the path's first parameter (a message's index may follow).
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, e)
            .await
            .map_err(|_| not_a_participant())?;
        let context = params
            .into_iter()
            .find(|(name, _)| name == "context")
            .map(|(_, value)| value)
            .ok_or_else(not_a_participant)?;
        let identity = member(e, &parts.headers, &context)?;
        Ok(Member { identity, context })
    }
}

fn member(e: &Emulator, headers: &HeaderMap, context: &str) -> Result<String, Response> {
    let identity = e.caller(headers)?;
    let state = e.state();
    // No such conversation answers as one the caller is not in: nothing is learnt by asking.
    match state.conversation(context) {
        Some(c)
            if c.unique_name.as_deref() == Some(context) && c.participant(&identity).is_some() =>
        {
            Ok(identity)
        }
        _ => Err(not_a_participant()),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn messages(
    State(e): State<Arc<Emulator>>,
    Member { context, .. }: Member,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(page)) = query else {
        return refused(
            StatusCode::BAD_REQUEST,
            "before and limit must be whole numbers.",
        );
    };
    let limit = page.limit.unwrap_or(30);
    if limit == 0 || limit > MAX_PAGE {
        return refused(StatusCode::BAD_REQUEST, "limit must be from 1 to 100.");
    }
    let state = e.state();
    let Some(c) = state.conversation(&context) else {
        return not_a_participant();
    };
    let older: Vec<&MessageRec> = c
        .messages
        .iter()
        .filter(|m| page.before.is_none_or(|b| m.index < b))
        .collect();
    let from = older.len().saturating_sub(limit);
    let messages: Vec<Value> = older[from..].iter().map(|m| message_json(m)).collect();
    Json(json!({ "messages": messages, "hasMore": from > 0 })).into_response()
}

#[derive(Deserialize)]
struct PostBody {
    body: String,
    attributes: Option<Value>,
}

async fn post_message(
    State(e): State<Arc<Emulator>>,
    Member { identity, context }: Member,
    body: JsonBody<PostBody>,
) -> Response {
    let Ok(Json(post)) = body else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The body must be JSON: {\"body\": \"…\", \"attributes\": {…}}.",
        );
    };
    if post.body.trim().is_empty() || post.body.chars().count() > MAX_BODY_CHARS {
        return refused(
            StatusCode::BAD_REQUEST,
            "A message is 1 to 1600 characters.",
        );
    }
    let attributes = match &post.attributes {
        None => None,
        Some(a @ Value::Object(_)) => Some(a.to_string()),
        Some(_) => return refused(StatusCode::BAD_REQUEST, "attributes must be an object."),
    };
    if !e.may(&context, &identity, "sendMessage") {
        return not_permitted();
    }
    let new = NewMessage {
        author: Some(&identity),
        body: &post.body,
        attributes: attributes.as_deref(),
    };
    match e.add_message(&context, new, Some(Source::Sdk)) {
        Ok(Some((_, message))) => (
            StatusCode::CREATED,
            Json(json!({ "message": message_json(&message) })),
        )
            .into_response(),
        Ok(None) => not_a_participant(),
        Err(_) => refused(
            StatusCode::BAD_REQUEST,
            "attributes must be a JSON object of at most 4 KB.",
        ),
    }
}

/// Twilio's refusal of what the participant's role does not permit (error 50107).
fn not_permitted() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": "User not authorized to perform the requested action.",
            "code": 50107,
        })),
    )
        .into_response()
}

impl Emulator {
    /// Whether `identity`'s role in the conversation of `context` has `permission`.
    fn may(&self, context: &str, identity: &str, permission: &str) -> bool {
        let state = self.state();
        state
            .conversation(context)
            .and_then(|c| c.participant(identity))
            .is_some_and(|p| state.permissions_of(p).iter().any(|x| x == permission))
    }
}

/// `DELETE conversations/{context}/messages/{index}`: one's own message (`deleteOwnMessage`)
/// or, for a moderator, anyone's (`deleteAnyMessage`). 204; the others hear `messageRemoved`.
async fn remove_message(
    State(e): State<Arc<Emulator>>,
    member: Member,
    Path((_, index)): Path<(String, String)>,
) -> Response {
    let Member { identity, context } = member;
    let Ok(index) = index.parse::<u64>() else {
        return refused(StatusCode::BAD_REQUEST, "The index must be a whole number.");
    };
    let author = {
        let state = e.state();
        let found = state
            .conversation(&context)
            .and_then(|c| c.messages.iter().find(|m| m.index == index));
        match found {
            Some(m) => m.author.clone(),
            None => return refused(StatusCode::NOT_FOUND, "No message has that index."),
        }
    };
    let needs = if author == identity {
        "deleteOwnMessage"
    } else {
        "deleteAnyMessage"
    };
    if !e.may(&context, &identity, needs) {
        return not_permitted();
    }
    let sid = {
        let mut state = e.state();
        let Some(c) = state.conversation_mut(&context) else {
            return not_a_participant();
        };
        c.messages.retain(|m| m.index != index);
        c.sid.clone()
    };
    e.unpersist_message(&sid, index);
    e.tell(Event::MessageRemoved {
        conversation: sid,
        index,
    });
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ReadBody {
    index: u64,
}

async fn read(
    State(e): State<Arc<Emulator>>,
    Member { identity, context }: Member,
    body: JsonBody<ReadBody>,
) -> Response {
    let Ok(Json(ReadBody { index })) = body else {
        return refused(StatusCode::BAD_REQUEST, "The body must be {\"index\": N}.");
    };
    let mut state = e.state();
    let Some(c) = state.conversation_mut(&context) else {
        return not_a_participant();
    };
    if c.messages.last().is_none_or(|m| index > m.index) {
        return refused(StatusCode::BAD_REQUEST, "No message has that index.");
    }
    if let Some(p) = c.participants.iter_mut().find(|p| p.identity == identity) {
        p.last_read_message_index = Some(index);
    }
    let answer = Json(conversation_json(c, &identity)).into_response();
    drop(state);
    e.persist();
    answer
}

async fn typing(State(e): State<Arc<Emulator>>, member: Member) -> Response {
    let Member { identity, context } = member;
    let sid = e.state().conversation(&context).map(|c| c.sid.clone());
    if let Some(conversation) = sid {
        e.tell(Event::Typing {
            conversation,
            identity,
        });
    }
    StatusCode::NO_CONTENT.into_response()
}

/// One live stream of an identity: online while it lasts.
struct Presence {
    emulator: Arc<Emulator>,
    identity: String,
}

impl Presence {
    fn new(emulator: Arc<Emulator>, identity: String) -> Self {
        *emulator
            .state()
            .streams
            .entry(identity.clone())
            .or_default() += 1;
        Self { emulator, identity }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut state = self.emulator.state();
        if let Some(n) = state.streams.get_mut(&self.identity) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.streams.remove(&self.identity);
            }
        }
    }
}

/// What `identity`'s stream is told of `event`, if anything.
fn told(e: &Emulator, identity: &str, event: &Event) -> Option<Sse> {
    let state = e.state();
    let c = state
        .conversations
        .iter()
        .find(|c| c.sid == event.conversation_sid())?;
    let context = c.unique_name.clone();
    if let Event::Left { identity: who, .. } = event
        && who == identity
    {
        return Some(sse("membershipEnded", json!({ "context": context })));
    }
    c.participant(identity)?;
    Some(match event {
        Event::MessageAdded { message, .. } => sse(
            "message",
            json!({ "context": context, "message": message_json(message) }),
        ),
        Event::Typing { identity: who, .. } if who != identity => {
            sse("typing", json!({ "context": context, "identity": who }))
        }
        Event::Typing { .. } => return None,
        Event::Joined { identity: who, .. } => {
            sse("joined", json!({ "context": context, "identity": who }))
        }
        Event::Left { identity: who, .. } => {
            sse("left", json!({ "context": context, "identity": who }))
        }
        Event::MessageRemoved { index, .. } => sse(
            "messageRemoved",
            json!({ "context": context, "index": index }),
        ),
    })
}

fn sse(name: &str, data: Value) -> Sse {
    Sse::default().event(name).data(data.to_string())
}

async fn events(State(e): State<Arc<Emulator>>, headers: HeaderMap) -> Response {
    let identity = or_refuse!(e.caller(&headers));
    let receiver = e.subscribe();
    let ready = sse("ready", json!({ "identity": identity }));
    let presence = Presence::new(e.clone(), identity);
    let stream = futures_util::stream::unfold(
        (Some(ready), receiver, presence),
        |(first, mut receiver, presence)| async move {
            if let Some(ready) = first {
                return Some((Ok::<_, Infallible>(ready), (None, receiver, presence)));
            }
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => told(&presence.emulator, &presence.identity, &event),
                    Err(RecvError::Lagged(_)) => Some(sse("resync", json!({}))),
                    Err(RecvError::Closed) => return None,
                };
                if let Some(event) = event {
                    return Some((Ok(event), (None, receiver, presence)));
                }
            }
        },
    );
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
