//! AppSync direct resolver for `Mutation.enableChannelNotifications(channel: ID!,
//! email: String!, token: ID!): SubscriptionResult!` and
//! `Mutation.enableChannelSmsNotifications(channel: ID!, phone: String!, token: ID!):
//! SmsSubscriptionResult!`.

use context_chat::fields::SubscribeFields;
use lambda_adapter::{Error, serve_fields, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::ENABLE_CHANNEL_NOTIFICATIONS).await;
    serve_fields::<SubscribeFields>(app).await
}
