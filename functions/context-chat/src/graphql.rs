//! The GraphQL API: the single definition of the contract's operations. The local server
//! executes it; the AppSync schema file is exported from it (`chatctl schema`).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Context, EmptySubscription, ErrorExtensions, Guard, ID, MergedObject, Object, SDLExportOptions,
    Schema, ServerResult, Variables,
};

use crate::app::App;
use crate::error::ChatError;

pub type ChatSchema = Schema<Query, Mutation, EmptySubscription>;

/// The longest message an error of async-graphql's own (a parse or validation error) keeps:
/// shorter than any signed JWT, so that one quoting the query never hands a whole token back.
const MAX_OWN_MESSAGE_CHARS: usize = 120;

/// A response as AppSync shapes it: `errorType` on the error itself, not under `extensions`,
/// which is where the widget reads it. Errors async-graphql raises itself (a malformed
/// query, a missing argument) are the caller's fault: `BadRequest`, with a short message
/// that quotes no more of the query than its position (a parse error would otherwise quote
/// the query's line, token and all). Every error is counted by its type.
pub fn appsync_error_shape(body: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return;
    };
    for error in errors {
        let kind = match error.pointer("/extensions/errorType").cloned() {
            Some(kind) => kind,
            None => {
                let message = error["message"].as_str().unwrap_or_default();
                error["message"] = json!(own_message(message));
                json!("BadRequest")
            }
        };
        if let Some(kind) = kind.as_str().and_then(crate::ErrorKind::from_name) {
            crate::metrics::error(crate::metrics::ErrorCounter::Errors, kind);
        }
        error["errorType"] = kind;
    }
}

/// A pest parse error (`--> 1:12`, the line, `= expected …`) as one line without the
/// query's text; any other message cut short.
fn own_message(message: &str) -> String {
    let position = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::trim);
    let expected = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(str::trim);
    let text = match (position, expected) {
        (Some(at), Some(expected)) => {
            format!("The query is not valid GraphQL at line:column {at}: {expected}.")
        }
        (Some(at), None) => format!("The query is not valid GraphQL at line:column {at}."),
        _ => message.lines().next().unwrap_or_default().to_owned(),
    };
    match text.char_indices().nth(MAX_OWN_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The schema, executing against `app`. No type is recursive, so the depth limit only has to
/// leave room for introspection (GraphiQL's query nests `ofType` eight deep); the server's body
/// limit bounds how many fields one request can ask for.
/// Documents parsed once are kept ([`ParsedQueries`]).
pub fn schema(app: Arc<App>) -> ChatSchema {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(app)
        .limit_depth(16)
        .extension(ParsedQueries::new())
        .finish()
}

/// Parsed documents by their text. A widget sends the same few documents over and over, and
/// parsing is the largest part of answering a small one (`scripts/load`); validation still
/// runs on every request, since it depends on the variables. Bounded in count and in the
/// size of what it keeps.
pub struct ParsedQueries(Arc<quick_cache::sync::Cache<String, ExecutableDocument>>);

/// Documents kept at most, and the longest document kept.
const PARSED_QUERIES: usize = 256;
const MAX_PARSED_QUERY_BYTES: usize = 8 * 1024;

impl ParsedQueries {
    pub fn new() -> Self {
        Self(Arc::new(quick_cache::sync::Cache::new(PARSED_QUERIES)))
    }
}

impl Default for ParsedQueries {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtensionFactory for ParsedQueries {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ParsedQueries(self.0.clone()))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParsedQueries {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.0.get(query) {
            return Ok(document);
        }
        // Only a document that parsed and passed the depth checks is kept.
        let document = next.run(ctx, query, variables).await?;
        if query.len() <= MAX_PARSED_QUERY_BYTES {
            self.0.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }
}

/// Which fields an SDL export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// The widget's fields only: a deployment without the platform API (AppSync refuses
    /// `@aws_oidc` without an OpenID Connect authorization mode).
    Widget,
    /// The widget's fields (`@aws_api_key`) and the platform API's (`@aws_oidc`).
    WithPlatform,
}

/// One AppSync resolver: a root field and the handler crate that resolves it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolver {
    pub type_name: &'static str,
    pub field_name: String,
    pub function: &'static str,
}

/// Every root field of the schema (with the platform API's), in the schema's order, with
/// the function whose group ([`fields::RESOLVERS`]) resolves it; an error names a field no
/// group resolves, or a group's field the schema lacks.
pub fn resolvers() -> crate::Result<Vec<Resolver>> {
    let sdl = sdl(Fields::WithPlatform);
    let mut found = Vec::new();
    let (mut root, mut in_description) = (None, false);
    for line in sdl.lines() {
        if line.trim() == "\"\"\"" {
            in_description = !in_description;
            continue;
        }
        if let Some(name) = line
            .strip_prefix("type ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            root = ["Query", "Mutation"].into_iter().find(|r| *r == name);
            continue;
        }
        if line.starts_with('}') {
            root = None;
        }
        let (Some(type_name), Some(field), false) = (root, line.strip_prefix("  "), in_description)
        else {
            continue;
        };
        let name_end = field
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(field.len());
        if name_end == 0 || !field[name_end..].starts_with(['(', ':']) {
            continue;
        }
        let field_name = field[..name_end].to_owned();
        let function = fields::RESOLVERS
            .iter()
            .find(|(_, names)| names.contains(&field_name.as_str()))
            .map(|(function, _)| *function)
            .ok_or_else(|| {
                ChatError::internal(format!("No function resolves {type_name}.{field_name}."))
            })?;
        found.push(Resolver {
            type_name,
            field_name,
            function,
        });
    }
    for (function, names) in fields::RESOLVERS {
        if let Some(missing) = names
            .iter()
            .find(|n| !found.iter().any(|r| r.field_name == **n))
        {
            return Err(ChatError::internal(format!(
                "{function} resolves {missing}, which the schema lacks."
            )));
        }
    }
    Ok(found)
}

/// The SDL for AppSync, as committed in `infra/schema.graphql` (widget only) and
/// `infra/schema-platform.graphql`. AppSync refuses a schema that redefines its built-in
/// directives (`@include`, `@skip`, `@aws_*`), so their definitions are left out.
pub fn sdl(fields: Fields) -> String {
    let options = SDLExportOptions::new()
        .prefer_single_line_descriptions()
        .use_space_ident();
    let full = match fields {
        Fields::Widget => Schema::build(WidgetQuery, WidgetMutation, EmptySubscription)
            .finish()
            .sdl_with_options(options),
        Fields::WithPlatform => {
            Schema::build(Query::default(), Mutation::default(), EmptySubscription)
                .finish()
                .sdl_with_options(options)
        }
    };
    let mut kept: Vec<&str> = Vec::new();
    for line in full.lines() {
        if [
            "directive @include",
            "directive @skip",
            "directive @aws_",
            "scalar AWSJSON",
        ]
        .iter()
        .any(|d| line.starts_with(d))
        {
            if kept.last().is_some_and(|l| l.starts_with('"')) {
                kept.pop();
            }
            continue;
        }
        kept.push(line);
    }
    let mut sdl = kept.join("\n").replace("\n\n\n", "\n\n");
    if fields == Fields::Widget {
        // One mode only: the API key is AppSync's default, so no field needs saying so. The
        // widget's roots are this crate's `WidgetQuery` and `WidgetMutation`, named as the
        // contract names them, in the contract's order.
        sdl = sdl
            .replace(" @aws_api_key", "")
            .replace("WidgetQuery", "Query")
            .replace("WidgetMutation", "Mutation");
        let mut blocks: Vec<&str> = sdl.split("\n\n").collect();
        blocks.sort_by_key(|block| {
            let head = block
                .lines()
                .find(|l| l.starts_with("type ") || l.starts_with("schema"))
                .unwrap_or_default();
            (head.starts_with("schema"), head.to_owned())
        });
        sdl = blocks.join("\n\n");
    }
    sdl.push('\n');
    sdl
}

use crate::fields;
use crate::fields::directives::{aws_api_key, aws_oidc};

/// How a request reached the schema (request data, set by the server per request): whether
/// it carried the API key (or none is needed), and its `Authorization` header.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    pub api_key: bool,
    pub authorization: Option<String>,
}

/// AppSync's rule for `@aws_api_key` fields: a request authorized another way (a platform
/// access token without the API key) is not let in, with AppSync's own answer.
struct ApiKeyGuard;

impl Guard for ApiKeyGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match ctx.data_opt::<RequestAuth>() {
            Some(auth) if !auth.api_key => Err(async_graphql::Error::new(format!(
                "Not Authorized to access {} on type {}",
                ctx.field().name(),
                if ctx.query_env.operation.node.ty
                    == async_graphql::parser::types::OperationType::Mutation
                {
                    "Mutation"
                } else {
                    "Query"
                }
            ))
            .extend_with(|_, ext| ext.set("errorType", "Unauthorized"))),
            _ => Ok(()),
        }
    }
}

fn authorization<'a>(ctx: &Context<'a>) -> Option<&'a str> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|a| a.authorization.as_deref())
}

impl ErrorExtensions for ChatError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone())
            .extend_with(|_, ext| ext.set("errorType", self.kind.as_str()))
    }
}

fn app<'a>(ctx: &Context<'a>) -> &'a Arc<App> {
    ctx.data_unchecked::<Arc<App>>()
}

/// The widget's queries and the platform API's.
#[derive(MergedObject, Default)]
pub struct Query(WidgetQuery, PlatformQuery);

/// The widget's mutations and the platform API's.
#[derive(MergedObject, Default)]
pub struct Mutation(WidgetMutation, PlatformMutation);

#[derive(Default)]
pub struct WidgetQuery;

#[Object]
impl WidgetQuery {
    /// Verifies a context token and says whom it names and which contexts it carries.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn verify_token(
        &self,
        ctx: &Context<'_>,
        token: ID,
    ) -> async_graphql::Result<fields::TokenInfo> {
        fields::verify_token(app(ctx), fields::TokenArgs { token: token.0 })
            .await
            .map_err(|e| e.extend())
    }
}

#[derive(Default)]
pub struct WidgetMutation;

#[Object]
impl WidgetMutation {
    /// Exchanges a context token for a Twilio access token for the Conversations SDK.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn create_chat_token(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        token: ID,
    ) -> async_graphql::Result<ID> {
        fields::create_chat_token(
            app(ctx),
            fields::ChatTokenArgs {
                device_id: device_id.0,
                token: token.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// As `createChatToken`, with a receipt: the token is on record under `xid` (1–64 of
    /// `A-Z a-z 0-9 . _ : -`, unique) or a new one.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn issue_chat_token(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        token: ID,
        xid: Option<ID>,
    ) -> async_graphql::Result<fields::ChatTokenReceipt> {
        fields::issue_chat_token(
            app(ctx),
            fields::IssueChatTokenArgs {
                device_id: device_id.0,
                token: token.0,
                xid: xid.map(|x| x.0),
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Exchanges a context token for a Virgil E3Kit JWT (end-to-end encryption) for the
    /// token's identity.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn create_virgil_token(&self, ctx: &Context<'_>, token: ID) -> async_graphql::Result<ID> {
        fields::create_virgil_token(app(ctx), fields::TokenArgs { token: token.0 })
            .await
            .map_err(|e| e.extend())
    }

    /// Subscribes an email address to a context's new messages; an unconfirmed address
    /// gets a confirmation code.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn enable_channel_notifications(
        &self,
        ctx: &Context<'_>,
        channel: ID,
        email: String,
        token: ID,
    ) -> async_graphql::Result<fields::SubscriptionResult> {
        fields::subscribe(
            app(ctx),
            fields::EmailSubscriptionArgs {
                channel: channel.0,
                email,
                token: token.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Confirms an email address with the code sent to it.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        email: String,
        code: String,
        // Optional (a new argument may not be required): the context token of the identity
        // that asked for the code; the code must then be that identity's.
        token: Option<ID>,
    ) -> async_graphql::Result<Option<bool>> {
        fields::confirm(
            app(ctx),
            fields::VerifyEmailArgs {
                email,
                code,
                token: token.map(|t| t.0),
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Subscribes a phone number (E.164) to a context's new messages by text; a number
    /// not verified for the token's identity gets a code from Twilio Verify.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn enable_channel_sms_notifications(
        &self,
        ctx: &Context<'_>,
        channel: ID,
        phone: String,
        token: ID,
    ) -> async_graphql::Result<fields::SmsSubscriptionResult> {
        fields::subscribe(
            app(ctx),
            fields::SmsSubscriptionArgs {
                channel: channel.0,
                phone,
                token: token.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Checks the code texted to `phone` and binds the number to the token's identity.
    #[graphql(guard = "ApiKeyGuard", directive = aws_api_key::apply())]
    async fn verify_phone(
        &self,
        ctx: &Context<'_>,
        phone: String,
        code: String,
        token: ID,
    ) -> async_graphql::Result<bool> {
        fields::confirm(
            app(ctx),
            fields::VerifyPhoneArgs {
                phone,
                code,
                token: token.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }
}

/// The platform API's queries (scope `chat:read`).
#[derive(Default)]
pub struct PlatformQuery;

#[Object]
impl PlatformQuery {
    /// The contexts whose conversations the identity is in.
    #[graphql(directive = aws_oidc::apply())]
    async fn identity_contexts(
        &self,
        ctx: &Context<'_>,
        identity: ID,
    ) -> async_graphql::Result<Vec<String>> {
        fields::identity_contexts(
            app(ctx),
            authorization(ctx),
            fields::IdentityArgs {
                identity: identity.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// The identities in the context's conversation.
    #[graphql(directive = aws_oidc::apply())]
    async fn context_members(
        &self,
        ctx: &Context<'_>,
        context: String,
    ) -> async_graphql::Result<Vec<ID>> {
        fields::context_members(
            app(ctx),
            authorization(ctx),
            fields::ContextArgs { context },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// For each room the identity is in: its unread count and read horizon (from one Twilio
    /// request), for a badge or an email of the platform's own.
    #[graphql(directive = aws_oidc::apply())]
    async fn unread_counts(
        &self,
        ctx: &Context<'_>,
        identity: ID,
    ) -> async_graphql::Result<Vec<fields::UnreadCount>> {
        fields::unread_counts(
            app(ctx),
            authorization(ctx),
            fields::IdentityArgs {
                identity: identity.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Who could read the context's room at some time from `from` to `to` (unix seconds), and
    /// on whose authority: each span from a join to its leaving, with their causes.
    #[graphql(directive = aws_oidc::apply())]
    async fn context_access(
        &self,
        ctx: &Context<'_>,
        context: String,
        from: i32,
        to: i32,
    ) -> async_graphql::Result<Vec<fields::ContextAccess>> {
        fields::context_access(
            app(ctx),
            authorization(ctx),
            fields::ContextAccessArgs { context, from, to },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Everything stored about the identity, as one JSON document: its rooms, and every record
    /// (subscriptions and their addresses, phone records, confirmations, ledger, revocation,
    /// access log) with where it is kept.
    #[graphql(directive = aws_oidc::apply())]
    async fn export_identity(
        &self,
        ctx: &Context<'_>,
        identity: ID,
    ) -> async_graphql::Result<fields::AwsJson> {
        fields::export_identity(
            app(ctx),
            authorization(ctx),
            fields::IdentityArgs {
                identity: identity.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// The ledger's record of a minted token, by its transaction id (and identity: an id is
    /// unique per identity; without one, `Conflict` where identities share it); null when
    /// unknown.
    #[graphql(directive = aws_oidc::apply())]
    async fn token_issuance(
        &self,
        ctx: &Context<'_>,
        xid: ID,
        identity: Option<ID>,
    ) -> async_graphql::Result<Option<fields::TokenIssuance>> {
        fields::token_issuance(
            app(ctx),
            authorization(ctx),
            fields::TokenIssuanceArgs {
                xid: xid.0,
                identity: identity.map(|i| i.0),
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// An identity's minted tokens, newest first (`limit`: default 20, at most 100).
    #[graphql(directive = aws_oidc::apply())]
    async fn token_issuances(
        &self,
        ctx: &Context<'_>,
        identity: ID,
        limit: Option<i32>,
    ) -> async_graphql::Result<Vec<fields::TokenIssuance>> {
        fields::token_issuances(
            app(ctx),
            authorization(ctx),
            fields::TokenIssuancesArgs {
                identity: identity.0,
                limit,
            },
        )
        .await
        .map_err(|e| e.extend())
    }
}

/// The platform API's mutations (scope `chat:admin`).
#[derive(Default)]
pub struct PlatformMutation;

#[Object]
impl PlatformMutation {
    /// Makes the identity's memberships match `contexts` now.
    #[graphql(directive = aws_oidc::apply())]
    async fn sync_identity(
        &self,
        ctx: &Context<'_>,
        identity: ID,
        contexts: Vec<String>,
    ) -> async_graphql::Result<fields::SyncResult> {
        fields::sync_identity(
            app(ctx),
            authorization(ctx),
            fields::SyncIdentityArgs {
                identity: identity.0,
                contexts,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Sets the title the context's room shows (1 to 256 characters).
    #[graphql(directive = aws_oidc::apply())]
    async fn update_context(
        &self,
        ctx: &Context<'_>,
        context: String,
        title: String,
    ) -> async_graphql::Result<fields::ContextRoom> {
        fields::update_context(
            app(ctx),
            authorization(ctx),
            fields::UpdateContextArgs { context, title },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Erases the identity: revoked, out of every room, its subscriptions, addresses, numbers
    /// and codes deleted, its ledger and access-log records kept under a keyed hash; with
    /// `deleteMessages`, the messages it wrote deleted at Twilio. Again: no change.
    #[graphql(directive = aws_oidc::apply())]
    async fn erase_identity(
        &self,
        ctx: &Context<'_>,
        identity: ID,
        delete_messages: Option<bool>,
    ) -> async_graphql::Result<fields::EraseResult> {
        fields::erase_identity(
            app(ctx),
            authorization(ctx),
            fields::EraseIdentityArgs {
                identity: identity.0,
                delete_messages,
            },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Archives the context's room (every message and participant, answered as JSON) and
    /// closes it at Twilio: participants removed, state closed. A later token naming the
    /// context gets a new room only where `platform/reopenArchived` is true; else `Conflict`.
    #[graphql(directive = aws_oidc::apply())]
    async fn archive_context(
        &self,
        ctx: &Context<'_>,
        context: String,
    ) -> async_graphql::Result<fields::ArchiveResult> {
        fields::archive_context(
            app(ctx),
            authorization(ctx),
            fields::ContextArgs { context },
        )
        .await
        .map_err(|e| e.extend())
    }

    /// Ends the identity's chat access: it leaves every conversation, its subscriptions end,
    /// and its context tokens issued before now are refused.
    #[graphql(directive = aws_oidc::apply())]
    async fn revoke_identity(
        &self,
        ctx: &Context<'_>,
        identity: ID,
    ) -> async_graphql::Result<fields::RevokeResult> {
        fields::revoke_identity(
            app(ctx),
            authorization(ctx),
            fields::IdentityArgs {
                identity: identity.0,
            },
        )
        .await
        .map_err(|e| e.extend())
    }
}

#[cfg(test)]
mod tests {
    use super::{Fields, appsync_error_shape, fields, resolvers, sdl};

    #[test]
    fn errors_of_the_parser_name_the_position_not_the_query() {
        let token = format!("eyJhbGciOiJFZERTQSJ9.{}.{}", "e".repeat(80), "s".repeat(86));
        let parse_error = format!(
            " --> 1:1\n  |\n1 | m\u{a6}utation {{ createVirgilToken(token: \"{token}\") }}\n  | ^---\n  |\n  = expected executable_definition"
        );
        let long = format!("Invalid value {token} for argument");
        let mut body = serde_json::json!({"errors": [
            {"message": parse_error},
            {"message": long},
            {"message": "The token has expired.", "extensions": {"errorType": "AccessDenied"}},
        ]});
        appsync_error_shape(&mut body);
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(
            errors[0]["message"],
            "The query is not valid GraphQL at line:column 1:1: expected executable_definition."
        );
        assert_eq!(errors[0]["errorType"], "BadRequest");
        let cut = errors[1]["message"].as_str().unwrap();
        assert!(cut.ends_with('…') && cut.chars().count() == 121, "{cut}");
        assert!(!body.to_string().contains(&token));
        assert_eq!(errors[2]["errorType"], "AccessDenied");
        assert_eq!(errors[2]["message"], "The token has expired.");
    }

    #[test]
    fn every_root_field_has_the_function_of_its_group() {
        let resolvers = resolvers().unwrap();
        let named = |field: &str| {
            resolvers
                .iter()
                .find(|r| r.field_name == field)
                .map(|r| (r.type_name, r.function))
        };
        assert_eq!(named("verifyToken"), Some(("Query", "verify-token")));
        assert_eq!(named("verifyPhone"), Some(("Mutation", "verify-email")));
        assert_eq!(named("revokeIdentity"), Some(("Mutation", "platform-api")));
        let all: usize = fields::RESOLVERS.iter().map(|(_, f)| f.len()).sum();
        assert_eq!(resolvers.len(), all);
    }

    #[test]
    fn sdl_leaves_out_built_in_directives_and_keeps_the_schema_block() {
        for fields in [Fields::Widget, Fields::WithPlatform] {
            let sdl = sdl(fields);
            assert!(!sdl.contains("@include"));
            assert!(!sdl.contains("@skip"));
            assert!(!sdl.contains("directive @aws"));
            assert!(sdl.contains("schema {"));
            assert!(sdl.contains("type TokenInfo"));
        }
    }

    #[test]
    fn each_door_opens_only_its_own_fields() {
        let widget = sdl(Fields::Widget);
        assert!(!widget.contains("@aws_"), "{widget}");
        assert!(!widget.contains("revokeIdentity"));
        let both = sdl(Fields::WithPlatform);
        for line in both
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains("):"))
        {
            let platform = [
                "identityContexts",
                "contextMembers",
                "tokenIssuance",
                "syncIdentity",
                "revokeIdentity",
                "unreadCounts",
                "updateContext",
                "contextAccess",
                "exportIdentity",
                "eraseIdentity",
                "archiveContext",
            ]
            .iter()
            .any(|f| line.trim_start().starts_with(f));
            let door = if platform {
                "@aws_oidc"
            } else {
                "@aws_api_key"
            };
            assert!(line.ends_with(door), "{line}");
        }
        assert!(both.contains("type SyncResult @aws_oidc"), "{both}");
        assert!(both.contains("type TokenInfo @aws_api_key"), "{both}");
    }
}
