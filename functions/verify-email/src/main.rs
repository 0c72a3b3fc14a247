//! AppSync direct resolver for
//! `Mutation.verifyEmail(email: String!, code: String!, token: ID): Boolean` (with a token,
//! the code must have been asked for by the token's identity) and
//! `Mutation.verifyPhone(phone: String!, code: String!, token: ID!): Boolean!`.

use lambda_adapter::{Error, Warm, init, optional_string_argument, reads, serve, string_argument};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init(env!("CARGO_PKG_NAME"));
    // The issuer's keys are fetched on the first call with a token, not during init: the
    // widget's calls carry none.
    let app = aws_ports::build_texting_app(Warm::Settings, reads::VERIFY_EMAIL).await;
    serve(app, |app, call| async move {
        let code = string_argument(&call, "code")?;
        let notifications = app.notifications()?;
        let verified = if call.info.field_name == "verifyPhone" {
            let phone = string_argument(&call, "phone")?;
            let token = string_argument(&call, "token")?;
            notifications.verify_phone(phone, code, token).await?
        } else {
            let email = string_argument(&call, "email")?;
            let token = optional_string_argument(&call, "token")?;
            notifications.verify_email(email, code, token).await?
        };
        Ok(Value::Bool(verified))
    })
    .await
}
