//! AppSync direct resolver for
//! `Mutation.verifyEmail(email: String!, code: String!, token: ID): Boolean`.
//! It needs no settings: only the store. Checking a token needs the issuer's settings,
//! which this function does not read yet, so a call with one is refused, not half-checked.

use context_chat::ChatError;
use lambda_adapter::{Error, init_tracing, serve, string_argument};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let confirmations = aws_ports::confirmations_from_env().await;
    serve(confirmations, |confirmations, call| async move {
        let email = string_argument(&call, "email")?;
        let code = string_argument(&call, "code")?;
        if call.arguments.as_ref().and_then(|a| a.get("token")).is_some_and(|t| !t.is_null()) {
            return Err(ChatError::bad_request(
                "verifyEmail with a token is not available in this deployment yet; call it without one.",
            ));
        }
        Ok(Value::Bool(confirmations?.verify_email(email, code, None).await?))
    })
    .await
}
