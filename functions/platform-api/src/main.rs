//! AppSync direct resolver for the platform API's fields: one function, as they share
//! the access token check (ADR 012). AppSync's OpenID Connect mode let the request in; the
//! library checks the token again (issuer, audience, scope) before acting.

use context_chat::ChatError;
use lambda_adapter::{
    Error, authorization, init, optional_int_argument, optional_string_argument, serve,
    string_argument, string_list_argument,
};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let app = aws_ports::build_platform_app().await;
    serve(app, |app, call| async move {
        let (platform, auth) = (app.platform(), authorization(&call));
        Ok(match call.info.field_name.as_str() {
            "identityContexts" => json!(platform.identity_contexts(auth, string_argument(&call, "identity")?).await?),
            "contextMembers" => json!(platform.context_members(auth, string_argument(&call, "context")?).await?),
            "syncIdentity" => {
                let contexts = string_list_argument(&call, "contexts")?;
                let r = platform.sync_identity(auth, string_argument(&call, "identity")?, contexts).await?;
                json!({ "joined": r.joined, "left": r.left, "sweepAt": r.sweep_at })
            }
            "revokeIdentity" => {
                let r = platform.revoke_identity(auth, string_argument(&call, "identity")?).await?;
                json!({ "left": r.left, "subscriptionsRemoved": r.subscriptions_removed, "revokedBefore": r.revoked_before, "sweepAt": r.sweep_at })
            }
            "tokenIssuance" => json!(platform.token_issuance(auth, string_argument(&call, "xid")?, optional_string_argument(&call, "identity")?).await?.map(|i| i.api_json())),
            "tokenIssuances" => {
                let found = platform.token_issuances(auth, string_argument(&call, "identity")?, optional_int_argument(&call, "limit")?).await?;
                json!(found.iter().map(|i| i.api_json()).collect::<Vec<_>>())
            }
            other => return Err(ChatError::bad_request(format!("This function does not resolve {other}."))),
        })
    })
    .await
}
