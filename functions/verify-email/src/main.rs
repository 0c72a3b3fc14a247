//! AppSync direct resolver for `Mutation.verifyEmail(email: String!, code: String!): Boolean`.
//! It needs no settings: only the store.

use lambda_adapter::{Error, Warm, init_tracing, serve, string_argument};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = aws_ports::build_notification_app(Warm::Nothing, &[]).await;
    serve(app, |app, call| async move {
        let email = string_argument(&call, "email")?;
        let code = string_argument(&call, "code")?;
        Ok(Value::Bool(app.verify_email(email, code).await?))
    })
    .await
}
