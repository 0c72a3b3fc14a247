//! The AWS SDK's configuration as a Lambda function has it: region and credentials in the
//! environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, …), and `AWS_ENDPOINT_URL` for a stand-in.
//! Reading only those, rather than aws-config's default chain (profiles, SSO, web identity,
//! assume-role through STS), keeps aws-sdk-sts and the rest of that chain out of the
//! function binaries. `chatctl`, on a developer's machine, loads the whole chain itself.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

pub fn sdk_config() -> SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ));
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        config = config.region(Region::new(region));
    }
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    config.build()
}
