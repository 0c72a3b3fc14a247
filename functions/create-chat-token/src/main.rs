//! AppSync direct resolver for `Mutation.createChatToken(deviceId: ID!, token: ID!): ID!`.
//! With the notification table, so that leaving a context ends its email subscription.

use lambda_adapter::{Error, init_tracing, reads, serve, string_argument};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = aws_ports::build_token_app(reads::CREATE_CHAT_TOKEN).await;
    serve(app, |app, call| async move {
        let device_id = string_argument(&call, "deviceId")?;
        let token = string_argument(&call, "token")?;
        let chat_token = app.tokens().create_chat_token(device_id, token).await?;
        Ok(Value::String(chat_token))
    })
    .await
}
