//! aws-ports' integration tests, one binary: DynamoDB and SQS through the AWS SDK against
//! moto, Twilio's and SendGrid's stand-ins on loopback.

mod ledger;
mod notifications;
mod platform;
