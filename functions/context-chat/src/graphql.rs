//! The GraphQL API: the single definition of the contract's operations. The local server
//! executes it; the AppSync schema file is exported from it (`chatctl schema`).

use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, ErrorExtensions, ID, Object, SDLExportOptions, Schema, SimpleObject,
};

use crate::app::App;
use crate::error::ChatError;

pub type ChatSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema, executing against `app`. No type is recursive, so the depth limit only has to
/// leave room for introspection (GraphiQL's query nests `ofType` eight deep); the server's body
/// limit bounds how many fields one request can ask for.
pub fn schema(app: Arc<App>) -> ChatSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(app)
        .limit_depth(16)
        .finish()
}

/// The SDL, as committed in `infra/schema.graphql` for AppSync. AppSync refuses a schema
/// that redefines the built-in `@include` and `@skip`, so their definitions are left out.
pub fn sdl() -> String {
    let full = Schema::build(Query, Mutation, EmptySubscription)
        .finish()
        .sdl_with_options(
            SDLExportOptions::new()
                .prefer_single_line_descriptions()
                .use_space_ident(),
        );
    let mut kept: Vec<&str> = Vec::new();
    for line in full.lines() {
        if line.starts_with("directive @include") || line.starts_with("directive @skip") {
            if kept.last().is_some_and(|l| l.starts_with('"')) {
                kept.pop();
            }
            continue;
        }
        kept.push(line);
    }
    let mut sdl = kept.join("\n");
    sdl.push('\n');
    sdl
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

/// Who a context token names, and the contexts it carries.
#[derive(SimpleObject)]
pub struct TokenInfo {
    pub identity: ID,
    pub contexts: Vec<String>,
}

#[derive(SimpleObject)]
pub struct SubscriptionResult {
    pub email_verified: bool,
}

pub struct Query;

#[Object]
impl Query {
    /// Verifies a context token and says whom it names and which contexts it carries.
    async fn verify_token(&self, ctx: &Context<'_>, token: ID) -> async_graphql::Result<TokenInfo> {
        let info = app(ctx)
            .tokens()
            .verify_token(&token)
            .await
            .map_err(|e| e.extend())?;
        Ok(TokenInfo {
            identity: ID(info.identity),
            contexts: info.contexts,
        })
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Exchanges a context token for a Twilio access token for the Conversations SDK.
    async fn create_chat_token(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        token: ID,
    ) -> async_graphql::Result<ID> {
        app(ctx)
            .tokens()
            .create_chat_token(&device_id, &token)
            .await
            .map(ID)
            .map_err(|e| e.extend())
    }

    /// Subscribes an email address to a context's new messages; an unconfirmed address
    /// gets a confirmation code.
    async fn enable_channel_notifications(
        &self,
        ctx: &Context<'_>,
        channel: ID,
        email: String,
        token: ID,
    ) -> async_graphql::Result<SubscriptionResult> {
        app(ctx)
            .notifications()
            .map_err(|e| e.extend())?
            .subscribe(&channel, &email, &token)
            .await
            .map(|email_verified| SubscriptionResult { email_verified })
            .map_err(|e| e.extend())
    }

    /// Confirms an email address with the code sent to it.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        email: String,
        code: String,
        // Optional (a new argument may not be required): the context token of the identity
        // that asked for the code; the code must then be that identity's.
        token: Option<ID>,
    ) -> async_graphql::Result<Option<bool>> {
        app(ctx)
            .notifications()
            .map_err(|e| e.extend())?
            .verify_email(&email, &code, token.as_ref().map(|t| t.as_str()))
            .await
            .map(Some)
            .map_err(|e| e.extend())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sdl_leaves_out_built_in_directives_and_keeps_the_schema_block() {
        let sdl = super::sdl();
        assert!(!sdl.contains("@include"));
        assert!(!sdl.contains("@skip"));
        assert!(sdl.contains("schema {"));
        assert!(sdl.contains("type TokenInfo {"));
    }
}
