//! AppSync direct resolver for `Mutation.verifyEmail(email: String!, code: String!): Boolean`.
//! It needs no settings: only the store.

use lambda_adapter::{Error, init_tracing, serve, string_argument};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let confirmations = aws_ports::confirmations_from_env().await;
    serve(confirmations, |confirmations, call| async move {
        let email = string_argument(&call, "email")?;
        let code = string_argument(&call, "code")?;
        Ok(Value::Bool(confirmations?.verify_email(email, code).await?))
    })
    .await
}
