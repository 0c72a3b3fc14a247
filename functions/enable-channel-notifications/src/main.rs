//! AppSync direct resolver for
//! `Mutation.enableChannelNotifications(channel: ID!, email: String!, token: ID!): SubscriptionResult!`
//! and `Mutation.enableChannelSmsNotifications(channel: ID!, phone: String!, token: ID!): SmsSubscriptionResult!`.

use lambda_adapter::{Error, Warm, init, reads, serve, string_argument};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    let app =
        aws_ports::build_texting_app(Warm::SettingsAndKeys, reads::ENABLE_CHANNEL_NOTIFICATIONS)
            .await;
    serve(app, |app, call| async move {
        let context = string_argument(&call, "channel")?;
        let token = string_argument(&call, "token")?;
        let notifications = app.notifications()?;
        if call.info.field_name == "enableChannelSmsNotifications" {
            let phone = string_argument(&call, "phone")?;
            let verified = notifications.subscribe_sms(context, phone, token).await?;
            return Ok(json!({ "phoneVerified": verified }));
        }
        let email = string_argument(&call, "email")?;
        let verified = notifications.subscribe(context, email, token).await?;
        Ok(json!({ "emailVerified": verified }))
    })
    .await
}
