//! AppSync direct resolver for
//! `Mutation.enableChannelNotifications(channel: ID!, email: String!, token: ID!): SubscriptionResult!`.

use lambda_adapter::{Error, Warm, init_tracing, serve, string_argument};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app =
        aws_ports::build_notification_app(Warm::SettingsAndKeys, lambda_adapter::ALL_PATHS).await;
    serve(app, |app, call| async move {
        let channel = string_argument(&call, "channel")?;
        let email = string_argument(&call, "email")?;
        let token = string_argument(&call, "token")?;
        let verified = app
            .enable_channel_notifications(channel, email, token)
            .await?;
        Ok(json!({ "emailVerified": verified }))
    })
    .await
}
