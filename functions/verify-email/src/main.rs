//! AppSync direct resolver for
//! `Mutation.verifyEmail(email: String!, code: String!, token: ID): Boolean` (with a token,
//! the code must have been asked for by the token's identity) and
//! `Mutation.verifyPhone(phone: String!, code: String!, token: ID!): Boolean!`.

use context_chat::fields::ConfirmFields;
use lambda_adapter::{Error, serve_fields, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::VERIFY_EMAIL).await;
    serve_fields::<ConfirmFields>(app).await
}
