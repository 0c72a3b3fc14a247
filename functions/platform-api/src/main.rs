//! AppSync direct resolver for the platform API's fields: one function, as they share
//! the access token check (ADR 012). AppSync's OpenID Connect mode let the request in; the
//! library checks the token again (issuer, audience, scope) before acting.

use context_chat::fields::PlatformFields;
use lambda_adapter::{Error, serve_fields, start, table};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = start(&table::PLATFORM_API).await;
    serve_fields::<PlatformFields>(app).await
}
