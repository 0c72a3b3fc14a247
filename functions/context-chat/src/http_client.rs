//! One HTTP stack per process: reqwest over rustls with aws-lc, checking servers against the
//! machine's root certificates (rustls-platform-verifier). The issuer's keys, Twilio, SendGrid
//! and the AWS SDK ([`crate::aws_env`]) all use it, so a function links one HTTP client and
//! one TLS client, and reads the root certificates once: reqwest builds a verifier, and so
//! reads every root certificate on the machine, for each client it builds, and the SDK's own
//! HTTP client read them again for each service (three reads per cold start, and HTTP/2 and a
//! second TLS stack in every binary; `adr/017`).

use std::sync::{Arc, OnceLock};

/// The TLS configuration every client of the process shares; `None` when no root certificate
/// could be read (logged), and reqwest's own then says why.
fn tls() -> Option<rustls::ClientConfig> {
    static TLS: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .inspect_err(|err| tracing::error!(%err, "no root certificates for TLS"))
            .ok()?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // reqwest is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(config)
    })
    .clone()
}

/// A client builder with the process's TLS configuration and our user agent.
pub fn builder() -> reqwest::ClientBuilder {
    let builder =
        reqwest::Client::builder().user_agent(concat!("context-chat/", env!("CARGO_PKG_VERSION")));
    match tls() {
        Some(config) => builder.use_preconfigured_tls(config),
        None => builder,
    }
}

/// HTTPS anywhere; plain HTTP only to this machine, for local mode and tests (issuer
/// keys, Twilio stand-ins).
pub fn is_allowed_remote_url(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    }
}
