//! AppSync direct resolver for `Mutation.createChatToken(deviceId: ID!, token: ID!): ID!`,
//! `Mutation.issueChatToken(deviceId: ID!, token: ID!, xid: ID): ChatTokenReceipt!` and
//! `Mutation.createVirgilToken(token: ID!): ID!`. With the table: the ledger and the minting
//! limit, revocations, and email subscriptions that end with the contexts provisioning leaves.

use context_chat::fields::TokenFields;
use lambda_adapter::{Error, serve_fields, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::CREATE_CHAT_TOKEN).await;
    serve_fields::<TokenFields>(app).await
}
