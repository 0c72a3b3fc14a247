//! aws-ports' integration tests, one binary: DynamoDB and SQS through the AWS SDK against
//! moto, Twilio's and SendGrid's stand-ins on loopback.

mod ledger;
mod notifications;
mod platform;

/// Environment variables as the embedded settings source takes them.
fn env_map(
    vars: impl IntoIterator<Item = (&'static str, String)>,
) -> std::collections::HashMap<String, String> {
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
