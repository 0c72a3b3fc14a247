//! AppSync direct resolver for `Mutation.createChatToken(deviceId: ID!, token: ID!): ID!`,
//! `Mutation.issueChatToken(deviceId: ID!, token: ID!, xid: ID): ChatTokenReceipt!` and
//! `Mutation.createVirgilToken(token: ID!): ID!`. With the table: the ledger and the minting
//! limit, revocations, and email subscriptions that end with the contexts provisioning leaves.

use lambda_adapter::{Error, init, optional_string_argument, reads, serve, string_argument};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let app = aws_ports::build_token_app(reads::CREATE_CHAT_TOKEN).await;
    serve(app, |app, call| async move {
        if call.info.field_name == "createVirgilToken" {
            let token = string_argument(&call, "token")?;
            return Ok(Value::String(
                app.tokens().create_virgil_token(token).await?,
            ));
        }
        let device_id = string_argument(&call, "deviceId")?;
        let token = string_argument(&call, "token")?;
        if call.info.field_name == "issueChatToken" {
            let xid = optional_string_argument(&call, "xid")?;
            let r = app.tokens().issue_chat_token(device_id, token, xid).await?;
            return Ok(json!({ "token": r.token, "xid": r.xid, "expiresAt": r.expires_at }));
        }
        let chat_token = app.tokens().create_chat_token(device_id, token).await?;
        Ok(Value::String(chat_token))
    })
    .await
}
