//! AppSync direct resolver for `Query.verifyToken(token: ID!): TokenInfo!`.
//! With the table, where revocations are (`revokeIdentity`).

use lambda_adapter::{Error, init, reads, serve, string_argument};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let app = aws_ports::build_token_app(reads::VERIFY_TOKEN).await;
    serve(app, |app, call| async move {
        let token = string_argument(&call, "token")?;
        let info = app.tokens().verify_token(token).await?;
        Ok(json!({ "identity": info.identity, "contexts": info.contexts }))
    })
    .await
}
