//! AppSync direct resolver for `Query.verifyToken(token: ID!): TokenInfo!`.
//! With the table, where revocations are (`revokeIdentity`).

use context_chat::fields::VerifyFields;
use lambda_adapter::{Error, serve_fields, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::VERIFY_TOKEN).await;
    serve_fields::<VerifyFields>(app).await
}
