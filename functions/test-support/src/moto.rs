//! moto's server on loopback, standing in for AWS. `scripts/test` starts one and exports
//! `MOTO_URL`; without it, a test starts its own from the project's venv and stops it on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::types::ParameterType;

pub struct Moto {
    url: String,
    _server: Option<crate::LocalServer>,
}

impl Moto {
    pub fn start() -> Self {
        if let Some(url) = std::env::var("MOTO_URL").ok().filter(|u| !u.is_empty()) {
            return Self { url, _server: None };
        }
        let binary = std::env::var("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|_| crate::workspace_root().join(".venv/bin/moto_server"));
        let port = crate::free_port();
        let mut command = Command::new(&binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let server = crate::LocalServer::start(
            command,
            port,
            "moto",
            "Run the tests with scripts/test, which installs it",
            Duration::from_secs(30),
        );
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _server: Some(server),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Environment variables that point the AWS SDK's standard chain at this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        aws_env(&self.url)
    }

    /// A function's environment: the AWS SDK pointed here, `STACK_NAME`, and
    /// `NOTIFICATIONS_TABLE` when it has a table.
    pub fn function_env(&self, stack: &str, table: Option<&str>) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.push(("STACK_NAME", stack.to_owned()));
        env.extend(table.map(|t| ("NOTIFICATIONS_TABLE", t.to_owned())));
        env
    }

    pub async fn ssm(&self) -> aws_sdk_ssm::Client {
        ssm_client(&self.url).await
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&sdk_config(&self.url).await)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&sdk_config(&self.url).await)
    }

    /// A FIFO queue (content-based de-duplication off, as the stack makes it) and a standard
    /// queue, named after `prefix`: their URLs.
    pub async fn notify_queues(&self, prefix: &str) -> (String, String) {
        let sqs = self.sqs().await;
        let fifo = sqs
            .create_queue()
            .queue_name(format!("{prefix}-notify.fifo"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("create the FIFO queue")
            .queue_url
            .unwrap();
        let delay = sqs
            .create_queue()
            .queue_name(format!("{prefix}-notify-delay"))
            .send()
            .await
            .expect("create the delay queue")
            .queue_url
            .unwrap();
        (fifo, delay)
    }
}

/// The FIFO group a drained message was sent in.
pub fn group_id(message: &aws_sdk_sqs::types::Message) -> Option<String> {
    message
        .attributes()?
        .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
        .cloned()
}

/// Every message now visible on a queue, deleting them, with their attributes.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for m in &messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
        all.extend(messages);
    }
}

/// How many messages a queue holds that are still delayed.
pub async fn delayed_count(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attributes
        .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Environment variables that point the AWS SDK's standard chain at `endpoint`, with test
/// credentials and few retries, so that an unreachable endpoint fails fast.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_MAX_ATTEMPTS", "2".into()),
    ]
}

/// An SSM client for an endpoint, with test credentials.
pub async fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(endpoint).await)
}

/// Puts a parameter, as an operator would.
pub async fn put_parameter(ssm: &aws_sdk_ssm::Client, name: &str, value: &str, secure: bool) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(if secure {
            ParameterType::SecureString
        } else {
            ParameterType::String
        })
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name}: {e:?}"));
}

/// Every item of a DynamoDB table (one page: the tests' tables are small).
pub async fn scan(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let page = client.scan().table_name(table).send().await.unwrap();
    page.items.unwrap_or_default()
}

/// A deployment's settings in moto: a stack named after `prefix`, whose SSM parameters name
/// an issuer on loopback that publishes `key`, with `api_secret` as Twilio's API secret.
pub struct Stack {
    pub moto: Moto,
    pub key: crate::TestKey,
    pub issuer: crate::Issuer,
    pub name: String,
}

impl Moto {
    /// The handler `binary` (a test's `env!("CARGO_BIN_EXE_…")`) under a new emulator, with
    /// `stack`'s settings, `table` when given, and `extra` variables.
    pub fn function(
        &self,
        binary: &str,
        stack: &str,
        table: Option<&str>,
        extra: impl IntoIterator<Item = (&'static str, String)>,
    ) -> (crate::Emulator, crate::Function) {
        let emulator = crate::Emulator::start();
        let mut env = self.function_env(stack, table);
        env.extend(extra);
        let function = crate::Function::of(binary, &emulator, &env);
        (emulator, function)
    }

    /// [`Moto::function`] on a Twilio stand-in of its own, which it answers with.
    pub async fn function_on_twilio(
        &self,
        binary: &str,
        stack: &str,
        table: Option<&str>,
    ) -> (crate::TwilioStandIn, crate::Emulator, crate::Function) {
        let twilio = crate::TwilioStandIn::start().await;
        let api = [("TWILIO_API_BASE_URL", twilio.base_url())];
        let (emulator, function) = self.function(binary, stack, table, api);
        (twilio, emulator, function)
    }
}

impl Stack {
    pub async fn start(prefix: &str, key: crate::TestKey, api_secret: &str) -> Stack {
        let moto = Moto::start();
        let issuer = crate::Issuer::start(crate::jwks(&[&key])).await;
        let name = crate::unique(prefix);
        put_settings(&moto.ssm().await, &name, &issuer.url(), api_secret).await;
        Stack {
            moto,
            key,
            issuer,
            name,
        }
    }
}

/// Puts the settings a stack needs under `/{stack}/`, as an operator would: the test Twilio
/// identifiers, `api_secret` as a SecureString, and the JWKS URL.
pub async fn put_settings(
    ssm: &aws_sdk_ssm::Client,
    stack: &str,
    jwks_url: &str,
    api_secret: &str,
) {
    for (name, value, secure) in [
        ("twilio/accountSID", crate::ACCOUNT_SID, false),
        ("twilio/apiKey", crate::API_KEY_SID, false),
        ("twilio/apiSecret", api_secret, true),
        ("twilio/chatServiceSID", crate::CHAT_SERVICE_SID, false),
        ("chat/jwks.json", jwks_url, false),
    ] {
        put_parameter(ssm, &format!("/{stack}/{name}"), value, secure).await;
    }
}

/// Puts the SMS services (the SMS stand-in's), as `chatctl put-params` does; the account
/// and API key are [`put_settings`]'s.
pub async fn put_sms_settings(ssm: &aws_sdk_ssm::Client, stack: &str) {
    for (name, value) in [
        ("twilio/verifyServiceSID", crate::sms::VERIFY_SERVICE_SID),
        (
            "twilio/messagingServiceSID",
            crate::sms::MESSAGING_SERVICE_SID,
        ),
    ] {
        put_parameter(ssm, &format!("/{stack}/{name}"), value, false).await;
    }
}

/// Puts what the notification functions need besides [`put_settings`], as `chatctl
/// put-params` does: the webhook's auth token, the link secret and the webhook path secret
/// (SecureStrings), and SendGrid's key (SecureString) and domain.
pub async fn put_notification_settings(ssm: &aws_sdk_ssm::Client, stack: &str) {
    for (name, value, secure) in [
        ("webhook/authToken", crate::AUTH_TOKEN, true),
        ("notifications/linkSecret", crate::LINK_SECRET, true),
        ("webhook/pathSecret", crate::WEBHOOK_PATH_SECRET, true),
        ("sendgrid/apiKey", crate::SENDGRID_API_KEY, true),
        ("sendgrid/domain", crate::SENDGRID_DOMAIN, false),
    ] {
        put_parameter(ssm, &format!("/{stack}/{name}"), value, secure).await;
    }
}
