//! The API's fields, each written once: its arguments (serde structs, as AppSync's direct
//! resolver events carry them), the service it calls, and its result (serde for the Lambdas,
//! async-graphql's object types for `graphql.rs`, which declares the schema and calls these).
//! The fields are grouped by the Lambda function that resolves them ([`Resolve`]), so that
//! a function links only its own fields' code; a group refuses every other field.

use serde::Serialize;
use serde_json::Value;

use crate::access_log::Cause;
use crate::app::App;
use crate::error::{ChatError, Result};
use crate::ledger::Issuance;
use crate::notifications::ChannelKind;

/// GraphQL's `ID`: a string on the wire; async-graphql's type where the schema is built, so
/// that the schema says `ID`.
#[cfg(feature = "graphql")]
pub type Id = async_graphql::ID;
#[cfg(not(feature = "graphql"))]
pub type Id = String;

/// AppSync's authorization directives, which the result types carry into the schema.
#[cfg(feature = "graphql")]
pub mod directives {
    use async_graphql::TypeDirective;

    /// AppSync's: the field or type is open to API-key requests.
    #[TypeDirective(
        name = "aws_api_key",
        location = "FieldDefinition",
        location = "Object"
    )]
    pub fn aws_api_key() {}

    // One line each: the schema export drops a directive's one-line description.
    /// AppSync's: the field or type is open to OpenID Connect (platform access token) requests.
    #[TypeDirective(name = "aws_oidc", location = "FieldDefinition", location = "Object")]
    pub fn aws_oidc() {}
}

/// A string as an [`Id`] (the same type without the `graphql` feature).
#[allow(clippy::useless_conversion)]
fn id(s: String) -> Id {
    Id::from(s)
}

/// Unix seconds (or a count) as GraphQL's `Int`.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---- Arguments ----

/// AppSync's `arguments`, as the group's reader takes them apart.
pub type ArgumentMap = serde_json::Map<String, Value>;

/// An argument's type: how it is read from its JSON value, and what a refusal says of it
/// (its name and the type it needs, never the value). Null counts as absent, as in GraphQL.
/// Read by reference: taking values out of the map (`remove`) linked its rebalancing.
pub trait Argument: Sized {
    fn take(value: Option<&Value>, name: &str) -> Result<Self>;
}

impl Argument for Option<String> {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ChatError::bad_request(format!("{name} must be a string."))),
        }
    }
}

impl Argument for String {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        <Option<String> as Argument>::take(value, name)?
            .ok_or_else(|| ChatError::bad_request(format!("{name} is required.")))
    }
}

impl Argument for Vec<String> {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        let bad = || ChatError::bad_request(format!("{name} must be a list of strings."));
        match value {
            None | Some(Value::Null) => Err(ChatError::bad_request(format!("{name} is required."))),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad()),
                })
                .collect(),
            Some(_) => Err(bad()),
        }
    }
}

impl Argument for Option<i32> {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| ChatError::bad_request(format!("{name} must be a whole number."))),
        }
    }
}

impl Argument for Option<bool> {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ChatError::bad_request(format!(
                "{name} must be true or false."
            ))),
        }
    }
}

impl Argument for i32 {
    fn take(value: Option<&Value>, name: &str) -> Result<Self> {
        <Option<i32> as Argument>::take(value, name)?
            .ok_or_else(|| ChatError::bad_request(format!("{name} is required.")))
    }
}

/// Declares an argument struct: its fields with their types and GraphQL names, and its
/// reader. Written out rather than derived with serde: four argument types shared by every
/// field cost the Lambdas less than a derived deserializer per struct, and every refusal
/// names its argument.
macro_rules! arguments {
    ($name:ident { $($(#[$doc:meta])* $field:ident: $ty:ty = $graphql:literal),+ $(,)? }) => {
        #[derive(Debug)]
        pub struct $name {
            $($(#[$doc])* pub $field: $ty),+
        }

        impl $name {
            pub fn read(arguments: &ArgumentMap) -> Result<Self> {
                Ok(Self {
                    $($field: Argument::take(arguments.get($graphql), $graphql)?),+
                })
            }
        }
    };
}

// ---- The widget's fields (API key) ----

arguments! { TokenArgs { token: String = "token" } }

arguments! { ChatTokenArgs { device_id: String = "deviceId", token: String = "token" } }

arguments! {
    IssueChatTokenArgs { device_id: String = "deviceId", token: String = "token", xid: Option<String> = "xid" }
}

arguments! {
    EmailSubscriptionArgs { channel: String = "channel", email: String = "email", token: String = "token" }
}

arguments! {
    SmsSubscriptionArgs { channel: String = "channel", phone: String = "phone", token: String = "token" }
}

arguments!(VerifyEmailArgs {
    email: String = "email",
    code: String = "code",
    /// Optional (a new argument may not be required): the context token of the identity
    /// that asked for the code; the code must then be that identity's.
    token: Option<String> = "token",
});

arguments! {
    VerifyPhoneArgs { phone: String = "phone", code: String = "code", token: String = "token" }
}

/// Who a context token names, and the contexts it carries.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_api_key::apply()))]
pub struct TokenInfo {
    pub identity: Id,
    pub contexts: Vec<String>,
    /// Each context's role: `reader`, `member` or `moderator` (the token's `roles` claim).
    pub roles: Vec<ContextRole>,
}

/// A context and the role the token gives in its room.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_api_key::apply()))]
pub struct ContextRole {
    pub context: String,
    pub role: String,
}

/// A Twilio access token, the transaction id it is on record by, and when it expires (unix
/// seconds): refresh before then.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_api_key::apply()))]
pub struct ChatTokenReceipt {
    pub token: Id,
    pub xid: Id,
    pub expires_at: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_api_key::apply()))]
pub struct SubscriptionResult {
    pub email_verified: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_api_key::apply()))]
pub struct SmsSubscriptionResult {
    pub phone_verified: bool,
}

/// The results that say whether an address is confirmed, made from that answer.
macro_rules! confirmed_results {
    ($($result:ident . $field:ident),*) => {
        $(impl From<bool> for $result {
            fn from($field: bool) -> Self {
                Self { $field }
            }
        })*
    };
}

confirmed_results!(
    SubscriptionResult.email_verified,
    SmsSubscriptionResult.phone_verified
);

pub async fn verify_token(app: &App, a: TokenArgs) -> Result<TokenInfo> {
    let info = app.tokens().verify_token(&a.token).await?;
    Ok(TokenInfo {
        identity: id(info.identity),
        contexts: info.contexts,
        roles: info
            .roles
            .into_iter()
            .map(|(context, role)| ContextRole {
                context,
                role: role.as_str().to_owned(),
            })
            .collect(),
    })
}

pub async fn create_chat_token(app: &App, a: ChatTokenArgs) -> Result<Id> {
    let token = app.tokens().create_chat_token(&a.device_id, &a.token);
    token.await.map(id)
}

pub async fn issue_chat_token(app: &App, a: IssueChatTokenArgs) -> Result<ChatTokenReceipt> {
    let tokens = app.tokens();
    let r = tokens
        .issue_chat_token(&a.device_id, &a.token, a.xid.as_deref())
        .await?;
    Ok(ChatTokenReceipt {
        token: id(r.token),
        xid: id(r.xid),
        expires_at: int(r.expires_at),
    })
}

pub async fn create_virgil_token(app: &App, a: TokenArgs) -> Result<Id> {
    app.tokens().create_virgil_token(&a.token).await.map(id)
}

/// A field's arguments that subscribe at an address on a channel: the context, the address,
/// the token.
pub trait Subscribing {
    const CHANNEL: ChannelKind;
    fn parts(&self) -> (&str, &str, &str);
}

/// A field's arguments that confirm an address with a code: the address, the code, the token.
pub trait Confirming {
    const CHANNEL: ChannelKind;
    fn parts(&self) -> (&str, &str, Option<&str>);
}

impl Subscribing for EmailSubscriptionArgs {
    const CHANNEL: ChannelKind = ChannelKind::Email;
    fn parts(&self) -> (&str, &str, &str) {
        (&self.channel, &self.email, &self.token)
    }
}

impl Subscribing for SmsSubscriptionArgs {
    const CHANNEL: ChannelKind = ChannelKind::Sms;
    fn parts(&self) -> (&str, &str, &str) {
        (&self.channel, &self.phone, &self.token)
    }
}

impl Confirming for VerifyEmailArgs {
    const CHANNEL: ChannelKind = ChannelKind::Email;
    fn parts(&self) -> (&str, &str, Option<&str>) {
        (&self.email, &self.code, self.token.as_deref())
    }
}

impl Confirming for VerifyPhoneArgs {
    const CHANNEL: ChannelKind = ChannelKind::Sms;
    fn parts(&self) -> (&str, &str, Option<&str>) {
        (&self.phone, &self.code, Some(&self.token))
    }
}

/// `enableChannelNotifications`, `enableChannelSmsNotifications`: whether the address is
/// confirmed, in the field's result.
pub async fn subscribe<A: Subscribing, R: From<bool>>(app: &App, a: A) -> Result<R> {
    let (context, address, token) = a.parts();
    let service = app.notifications()?;
    let confirmed = service
        .subscribe(A::CHANNEL, context, address, token)
        .await?;
    Ok(R::from(confirmed))
}

/// `verifyEmail`, `verifyPhone`: whether the code matched.
pub async fn confirm<A: Confirming, R: From<bool>>(app: &App, a: A) -> Result<R> {
    let (address, code, token) = a.parts();
    let service = app.notifications()?;
    Ok(R::from(
        service.confirm(A::CHANNEL, address, code, token).await?,
    ))
}

// ---- The platform API's fields (OpenID Connect access token) ----

arguments! { IdentityArgs { identity: String = "identity" } }

arguments! { ContextArgs { context: String = "context" } }

arguments! {
    SyncIdentityArgs { identity: String = "identity", contexts: Vec<String> = "contexts" }
}

arguments! { TokenIssuanceArgs { xid: String = "xid", identity: Option<String> = "identity" } }

arguments! { TokenIssuancesArgs { identity: String = "identity", limit: Option<i32> = "limit" } }

arguments! { UpdateContextArgs { context: String = "context", title: String = "title" } }

arguments! {
    EraseIdentityArgs { identity: String = "identity", delete_messages: Option<bool> = "deleteMessages" }
}

/// A JSON document, as AppSync's `AWSJSON` carries it: its text.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct AwsJson(pub String);

#[cfg(feature = "graphql")]
#[async_graphql::Scalar(name = "AWSJSON")]
impl async_graphql::ScalarType for AwsJson {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match value {
            async_graphql::Value::String(s) => Ok(AwsJson(s)),
            other => Err(async_graphql::InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.clone())
    }
}

fn aws_json(value: &Value) -> AwsJson {
    AwsJson(value.to_string())
}

/// What `eraseIdentity` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct EraseResult {
    /// What the ledger and access log now name the identity by.
    pub pseudonym: String,
    /// The contexts whose rooms it left.
    pub left: Vec<String>,
    pub records_deleted: i64,
    /// Ledger and access-log records kept for audit, under the pseudonym.
    pub records_pseudonymized: i64,
    pub messages_deleted: i64,
    /// Nothing was left to erase: nothing changed.
    pub already_erased: bool,
}

/// What `archiveContext` did, and the archive: the room's title, participants and every
/// message, as JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct ArchiveResult {
    pub context: String,
    /// The unique name the closed conversation keeps at Twilio.
    pub archived_name: String,
    pub participants: Vec<String>,
    pub messages: i64,
    pub archive: AwsJson,
}

pub async fn export_identity(app: &App, auth: Option<&str>, a: IdentityArgs) -> Result<AwsJson> {
    let export = app.platform().export_identity(auth, &a.identity).await?;
    Ok(aws_json(&export))
}

pub async fn erase_identity(
    app: &App,
    auth: Option<&str>,
    a: EraseIdentityArgs,
) -> Result<EraseResult> {
    let deleting = a.delete_messages.unwrap_or(false);
    let r = app
        .platform()
        .erase_identity(auth, &a.identity, deleting)
        .await?;
    Ok(EraseResult {
        pseudonym: r.pseudonym,
        left: r.left,
        records_deleted: int(r.records_deleted as u64),
        records_pseudonymized: int(r.records_pseudonymized as u64),
        messages_deleted: int(r.messages_deleted as u64),
        already_erased: r.already_erased,
    })
}

pub async fn archive_context(
    app: &App,
    auth: Option<&str>,
    a: ContextArgs,
) -> Result<ArchiveResult> {
    let r = app.platform().archive_context(auth, &a.context).await?;
    Ok(ArchiveResult {
        context: r.context,
        archived_name: r.archived_name,
        participants: r.participants,
        messages: int(r.messages as u64),
        archive: aws_json(&r.archive),
    })
}

arguments! { ContextAccessArgs { context: String = "context", from: i32 = "from", to: i32 = "to" } }

/// Why a membership began or ended: `token` (with the chat token's ledger `xid`, and the
/// context token's `issuer` and `keyId`), `sync` or `revoke` (with the platform `client`),
/// or `sweep` (the second sweep after one of those).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct AccessCause {
    pub kind: String,
    pub xid: Option<Id>,
    pub issuer: Option<String>,
    pub key_id: Option<String>,
    pub client: Option<String>,
}

impl From<Cause> for AccessCause {
    fn from(cause: Cause) -> Self {
        let mut out = AccessCause {
            kind: String::new(),
            xid: None,
            issuer: None,
            key_id: None,
            client: None,
        };
        match cause {
            Cause::Token {
                xid,
                issuer,
                key_id,
            } => {
                out.kind = "token".into();
                out.xid = xid.map(id);
                out.issuer = issuer;
                out.key_id = Some(key_id);
            }
            Cause::Sync { client } => {
                out.kind = "sync".into();
                out.client = Some(client);
            }
            Cause::Revoke { client } => {
                out.kind = "revoke".into();
                out.client = Some(client);
            }
            Cause::Archive { client } => {
                out.kind = "archive".into();
                out.client = Some(client);
            }
            Cause::Sweep => out.kind = "sweep".into(),
        }
        out
    }
}

/// A time an identity could read a context's room, and on whose authority.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct ContextAccess {
    pub identity: Id,
    /// When it joined (unix seconds); null when that is older than the log keeps.
    pub from: Option<i64>,
    /// When it left; null while it is in.
    pub to: Option<i64>,
    /// What let it in; null when that is older than the log keeps.
    pub cause: Option<AccessCause>,
    /// What took it out.
    pub ended_by: Option<AccessCause>,
}

/// A room's unread count for an identity, as Twilio keeps it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct UnreadCount {
    pub context: String,
    /// The messages after the identity's read horizon; null until it first reads in the
    /// room (Twilio counts from a read horizon).
    pub unread: Option<i64>,
    /// The index of the last message it read; null before any.
    pub last_read_index: Option<i64>,
}

/// A context's room after `updateContext`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct ContextRoom {
    pub context: String,
    pub title: String,
}

/// What `syncIdentity` changed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct SyncResult {
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// When (unix seconds) the memberships are made what this sync said once more, undoing
    /// any join that raced it; null when no sweep could be scheduled.
    pub sweep_at: Option<i64>,
}

/// What `revokeIdentity` did; context tokens issued before `revokedBefore` (unix seconds)
/// are refused.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct RevokeResult {
    pub left: Vec<String>,
    pub subscriptions_removed: i64,
    pub revoked_before: i64,
    /// When (unix seconds) the identity leaves every conversation once more, undoing any
    /// join that raced the revocation; null when no sweep could be scheduled.
    pub sweep_at: Option<i64>,
}

/// A minted token as the ledger records it: never the token, only its SHA-256 (hex).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "graphql", derive(async_graphql::SimpleObject))]
#[cfg_attr(feature = "graphql", graphql(directive = directives::aws_oidc::apply()))]
pub struct TokenIssuance {
    pub xid: Id,
    /// `twilio-chat`, `context-dev` or `virgil`.
    pub kind: String,
    pub identity: Id,
    pub contexts: Vec<String>,
    pub device_id: Option<Id>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub token_sha256: String,
}

impl From<Issuance> for TokenIssuance {
    fn from(i: Issuance) -> Self {
        Self {
            xid: id(i.xid),
            kind: i.kind.as_str().to_owned(),
            identity: id(i.identity),
            contexts: i.contexts,
            device_id: i.device_id.map(id),
            issued_at: int(i.issued_at),
            expires_at: int(i.expires_at),
            token_sha256: i.token_sha256,
        }
    }
}

pub async fn identity_contexts(
    app: &App,
    auth: Option<&str>,
    a: IdentityArgs,
) -> Result<Vec<String>> {
    app.platform().identity_contexts(auth, &a.identity).await
}

pub async fn context_members(app: &App, auth: Option<&str>, a: ContextArgs) -> Result<Vec<Id>> {
    let members = app.platform().context_members(auth, &a.context).await?;
    Ok(members.into_iter().map(id).collect())
}

pub async fn unread_counts(
    app: &App,
    auth: Option<&str>,
    a: IdentityArgs,
) -> Result<Vec<UnreadCount>> {
    let counts = app.platform().unread_counts(auth, &a.identity).await?;
    Ok(counts
        .into_iter()
        .map(|u| UnreadCount {
            context: u.context,
            unread: u.unread.map(int),
            last_read_index: u.last_read_index.map(int),
        })
        .collect())
}

pub async fn update_context(
    app: &App,
    auth: Option<&str>,
    a: UpdateContextArgs,
) -> Result<ContextRoom> {
    let title = app
        .platform()
        .update_context(auth, &a.context, &a.title)
        .await?;
    Ok(ContextRoom {
        context: a.context,
        title,
    })
}

pub async fn context_access(
    app: &App,
    auth: Option<&str>,
    a: ContextAccessArgs,
) -> Result<Vec<ContextAccess>> {
    let (from, to) = (i64::from(a.from), i64::from(a.to));
    let spans = app
        .platform()
        .context_access(auth, &a.context, from, to)
        .await?;
    Ok(spans
        .into_iter()
        .map(|s| ContextAccess {
            identity: id(s.identity),
            from: s.from.map(int),
            to: s.to.map(int),
            cause: s.cause.map(AccessCause::from),
            ended_by: s.ended_by.map(AccessCause::from),
        })
        .collect())
}

pub async fn sync_identity(
    app: &App,
    auth: Option<&str>,
    a: SyncIdentityArgs,
) -> Result<SyncResult> {
    let platform = app.platform();
    let r = platform
        .sync_identity(auth, &a.identity, a.contexts)
        .await?;
    Ok(SyncResult {
        joined: r.joined,
        left: r.left,
        sweep_at: r.sweep_at.map(int),
    })
}

pub async fn revoke_identity(
    app: &App,
    auth: Option<&str>,
    a: IdentityArgs,
) -> Result<RevokeResult> {
    let r = app.platform().revoke_identity(auth, &a.identity).await?;
    Ok(RevokeResult {
        left: r.left,
        subscriptions_removed: int(r.subscriptions_removed as u64),
        revoked_before: int(r.revoked_before),
        sweep_at: r.sweep_at.map(int),
    })
}

pub async fn token_issuance(
    app: &App,
    auth: Option<&str>,
    a: TokenIssuanceArgs,
) -> Result<Option<TokenIssuance>> {
    let platform = app.platform();
    let found = platform.token_issuance(auth, &a.xid, a.identity.as_deref());
    Ok(found.await?.map(TokenIssuance::from))
}

pub async fn token_issuances(
    app: &App,
    auth: Option<&str>,
    a: TokenIssuancesArgs,
) -> Result<Vec<TokenIssuance>> {
    let limit = a.limit.map(i64::from);
    let found = app.platform().token_issuances(auth, &a.identity, limit);
    Ok(found.await?.into_iter().map(TokenIssuance::from).collect())
}

// ---- The Lambdas' groups ----

/// The fields one Lambda function resolves: read from the event's field name and
/// arguments ([`parse`]), resolved to the field's JSON value.
pub trait Resolve: Sized {
    /// The field `name` with `arguments`; `None` when the group has no such field.
    fn read(name: &str, arguments: &ArgumentMap) -> Option<Result<Self>>;

    fn resolve(self, app: &App, auth: Option<&str>) -> impl Future<Output = Result<Value>>;
}

fn json<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|_| ChatError::internal("An answer could not be written."))
}

/// Declares a group: an enum of its fields, each with its GraphQL name, its argument struct
/// and the call above that resolves it.
macro_rules! group {
    ($(#[$doc:meta])* $name:ident($function:literal) |$app:ident, $auth:ident| {
        $($field:literal => $variant:ident($a:ident: $args:ty) => $call:expr),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {
            $($variant($args)),+
        }

        impl $name {
            /// The handler crate that resolves these fields.
            pub const FUNCTION: &'static str = $function;
            pub const FIELDS: &'static [&'static str] = &[$($field),+];
        }

        impl Resolve for $name {
            fn read(name: &str, arguments: &ArgumentMap) -> Option<Result<Self>> {
                Some(match name {
                    $($field => <$args>::read(arguments).map($name::$variant),)+
                    _ => return None,
                })
            }

            #[allow(unused_variables)]
            async fn resolve(self, $app: &App, $auth: Option<&str>) -> Result<Value> {
                match self {
                    $($name::$variant($a) => json($call.await?)),+
                }
            }
        }
    };
}

group!(
    /// `createChatToken`, `issueChatToken`, `createVirgilToken`.
    TokenFields("create-chat-token") |app, auth| {
        "createChatToken" => CreateChatToken(a: ChatTokenArgs) => create_chat_token(app, a),
        "issueChatToken" => IssueChatToken(a: IssueChatTokenArgs) => issue_chat_token(app, a),
        "createVirgilToken" => CreateVirgilToken(a: TokenArgs) => create_virgil_token(app, a),
    }
);

group!(
    /// `verifyToken`.
    VerifyFields("verify-token") |app, auth| {
        "verifyToken" => VerifyToken(a: TokenArgs) => verify_token(app, a),
    }
);

group!(
    /// `enableChannelNotifications`, `enableChannelSmsNotifications`.
    SubscribeFields("enable-channel-notifications") |app, auth| {
        "enableChannelNotifications" => EnableChannelNotifications(a: EmailSubscriptionArgs) =>
            subscribe::<_, SubscriptionResult>(app, a),
        "enableChannelSmsNotifications" => EnableChannelSmsNotifications(a: SmsSubscriptionArgs) =>
            subscribe::<_, SmsSubscriptionResult>(app, a),
    }
);

group!(
    /// `verifyEmail`, `verifyPhone`.
    ConfirmFields("verify-email") |app, auth| {
        "verifyEmail" => VerifyEmail(a: VerifyEmailArgs) => confirm::<_, Option<bool>>(app, a),
        "verifyPhone" => VerifyPhone(a: VerifyPhoneArgs) => confirm::<_, bool>(app, a),
    }
);

group!(
    /// The platform API's fields, each checking the access token.
    PlatformFields("platform-api") |app, auth| {
        "identityContexts" => IdentityContexts(a: IdentityArgs) => identity_contexts(app, auth, a),
        "contextMembers" => ContextMembers(a: ContextArgs) => context_members(app, auth, a),
        "unreadCounts" => UnreadCounts(a: IdentityArgs) => unread_counts(app, auth, a),
        "contextAccess" => ContextAccess(a: ContextAccessArgs) => context_access(app, auth, a),
        "exportIdentity" => ExportIdentity(a: IdentityArgs) => export_identity(app, auth, a),
        "eraseIdentity" => EraseIdentity(a: EraseIdentityArgs) => erase_identity(app, auth, a),
        "archiveContext" => ArchiveContext(a: ContextArgs) => archive_context(app, auth, a),
        "updateContext" => UpdateContext(a: UpdateContextArgs) => update_context(app, auth, a),
        "syncIdentity" => SyncIdentity(a: SyncIdentityArgs) => sync_identity(app, auth, a),
        "revokeIdentity" => RevokeIdentity(a: IdentityArgs) => revoke_identity(app, auth, a),
        "tokenIssuance" => TokenIssuance(a: TokenIssuanceArgs) => token_issuance(app, auth, a),
        "tokenIssuances" => TokenIssuances(a: TokenIssuancesArgs) => token_issuances(app, auth, a),
    }
);

/// Which function resolves which fields: AppSync's resolvers are made from this
/// (`chatctl resolvers` writes `infra/appsync-resolvers.json`, which the CDK app reads).
pub const RESOLVERS: [(&str, &[&str]); 5] = [
    (VerifyFields::FUNCTION, VerifyFields::FIELDS),
    (TokenFields::FUNCTION, TokenFields::FIELDS),
    (SubscribeFields::FUNCTION, SubscribeFields::FIELDS),
    (ConfirmFields::FUNCTION, ConfirmFields::FIELDS),
    (PlatformFields::FUNCTION, PlatformFields::FIELDS),
];

/// The field `name` of group `G` with `arguments`, or `BadRequest`: a field the group does
/// not resolve, an argument missing (null counts as missing, as in GraphQL) or of another
/// type. The message names the argument, never its value.
pub fn parse<G: Resolve>(name: &str, arguments: Option<Value>) -> Result<G> {
    let args = match arguments {
        Some(Value::Object(args)) => args,
        Some(Value::Null) | None => ArgumentMap::new(),
        Some(_) => return Err(ChatError::bad_request("The arguments must be an object.")),
    };
    G::read(name, &args).unwrap_or_else(|| {
        Err(ChatError::bad_request(format!(
            "This function does not resolve {name}."
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn arguments_are_read_by_name_and_null_is_missing() {
        let args = json!({"deviceId": "d", "token": "t", "xid": null});
        let TokenFields::IssueChatToken(a) = parse("issueChatToken", Some(args.clone())).unwrap()
        else {
            panic!("another field")
        };
        assert_eq!(
            (a.device_id.as_str(), a.token.as_str(), a.xid),
            ("d", "t", None)
        );

        let err = parse::<TokenFields>("createChatToken", Some(json!({"token": "t"}))).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::BadRequest, "deviceId is required.")
        );
        let err = parse::<TokenFields>(
            "createChatToken",
            Some(json!({"deviceId": null, "token": "t"})),
        )
        .unwrap_err();
        assert_eq!(err.message, "deviceId is required.");
    }

    #[test]
    fn a_field_of_another_function_is_refused_by_name() {
        let args = json!({"token": "t"});
        let err = parse::<TokenFields>("verifyToken", Some(args.clone())).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (
                ErrorKind::BadRequest,
                "This function does not resolve verifyToken."
            )
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_not_repeated_in_the_message() {
        let args = json!({"phone": 14155550101u64, "code": "123456", "token": "t"});
        let err = parse::<ConfirmFields>("verifyPhone", Some(args.clone())).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert_eq!(err.message, "phone must be a string.");
    }

    #[test]
    fn lists_and_numbers_are_checked_by_type() {
        let ok = json!({"identity": "alex", "contexts": ["general"]});
        assert!(parse::<PlatformFields>("syncIdentity", Some(ok.clone())).is_ok());
        let err = parse::<PlatformFields>(
            "syncIdentity",
            Some(json!({"identity": "alex", "contexts": [1]})),
        )
        .unwrap_err();
        assert_eq!(err.message, "contexts must be a list of strings.");
        let err = parse::<PlatformFields>(
            "tokenIssuances",
            Some(json!({"identity": "alex", "limit": "ten"})),
        )
        .unwrap_err();
        assert_eq!(err.message, "limit must be a whole number.");
        let PlatformFields::TokenIssuances(a) = parse(
            "tokenIssuances",
            Some(json!({"identity": "alex", "limit": null})),
        )
        .unwrap() else {
            panic!("another field")
        };
        assert_eq!(a.limit, None);
    }
}
