//! What keeps a browser's other tabs out of `chatctl serve`: CORS only for the GraphQL route
//! and only for the allowed origins, the API key on the outbox, and a Host check against DNS
//! rebinding (a page on `evil.example` whose name later points at 127.0.0.1).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Comma-separated origins the GraphQL route answers browsers from; `*` as a port matches any.
pub const ALLOWED_ORIGINS_ENV: &str = "CHAT_ALLOWED_ORIGINS";

/// An allowed origin: scheme and host exactly, the port exactly or (`*`) any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme_host: String,
    port: Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Default,
    Exact(u16),
    Any,
}

impl OriginPattern {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = text.split_once("://")?;
        if !matches!(scheme, "http" | "https")
            || rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
        {
            return None;
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']')?;
                (format!("[{h}]"), after.strip_prefix(':'))
            }
            None => match rest.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            },
        };
        let port = match port {
            None => Port::Default,
            Some("*") => Port::Any,
            Some(p) => Port::Exact(p.parse().ok()?),
        };
        (!host.is_empty()).then(|| Self {
            scheme_host: format!("{scheme}://{host}"),
            port,
        })
    }

    fn matches(&self, origin: &str) -> bool {
        let Some(given) = OriginPattern::parse(origin) else {
            return false;
        };
        given.port != Port::Any
            && given.scheme_host == self.scheme_host
            && (self.port == Port::Any || self.port == given.port)
    }
}

impl std::fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Port::Default => write!(f, "{}", self.scheme_host),
            Port::Exact(p) => write!(f, "{}:{p}", self.scheme_host),
            Port::Any => write!(f, "{}:*", self.scheme_host),
        }
    }
}

impl std::fmt::Display for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(", "))
    }
}

/// The origins the GraphQL route allows: `CHAT_ALLOWED_ORIGINS`, else this server's own
/// origin and `http://localhost:*` (a widget under development).
#[derive(Clone)]
pub struct Origins(Vec<OriginPattern>);

impl Origins {
    pub fn from_env(own: &str) -> Result<Self, String> {
        let configured = std::env::var(ALLOWED_ORIGINS_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let list = configured.unwrap_or_else(|| format!("{own},http://localhost:*"));
        list.split(',')
            .filter(|o| !o.trim().is_empty())
            .map(|o| {
                OriginPattern::parse(o).ok_or_else(|| {
                    format!("{ALLOWED_ORIGINS_ENV}: {o:?} is not an origin like https://app.example.org or http://localhost:*")
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|p| p.matches(origin))
    }

    /// CORS for the GraphQL route and the REST token routes (their bearer is allowed).
    pub fn cors(&self) -> CorsLayer {
        let origins = Arc::new(self.clone());
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| origins.allows(o))
            }))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-api-key"),
            ])
    }
}

/// The names this server answers to: loopback ones, and the host of the public URL it was
/// given (`WEBHOOK_PUBLIC_URL`, a tunnel for Twilio's webhook).
pub struct Hosts {
    public: Option<String>,
}

/// Who a request's Host says it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Loopback,
    /// The host of `WEBHOOK_PUBLIC_URL`: a tunnel from the internet.
    Public,
    Stranger,
}

/// The only routes the tunnel's host answers: what Twilio and a reader of an email call (the
/// webhook under its path secret, the unsubscribe links). The outbox (codes), the metrics,
/// the dev token mint, the development OAuth server and the rest stay on loopback, with or
/// without `CHAT_API_KEY` (issue 30, L8).
fn is_public_path(path: &str) -> bool {
    path == context_chat::notifications::unsubscribe::PATH
        || path
            .strip_prefix(context_chat::http::notifications::WEBHOOK_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|secret| !secret.is_empty() && !secret.contains('/'))
}

impl Hosts {
    pub fn new(public_url: Option<&str>) -> Self {
        Self {
            public: public_url
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase)),
        }
    }

    fn audience(&self, host_header: &str) -> Audience {
        let host = host_header.trim().to_ascii_lowercase();
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
            None => host
                .rsplit_once(':')
                .map_or(host.clone(), |(h, _)| h.to_owned()),
        };
        let loopback = name == "localhost"
            || name.ends_with(".localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            Audience::Loopback
        } else if self.public.as_deref() == Some(name.as_str()) {
            Audience::Public
        } else {
            Audience::Stranger
        }
    }
}

/// 421 Misdirected Request for a Host this server is not; 404 for a route the tunnel's
/// host does not serve.
pub async fn check_host(State(hosts): State<Arc<Hosts>>, request: Request, next: Next) -> Response {
    let audience = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or(Audience::Stranger, |h| hosts.audience(h));
    match audience {
        Audience::Loopback => next.run(request).await,
        Audience::Public if is_public_path(request.uri().path()) => {
            next.run(request).await
        }
        Audience::Public => (
            StatusCode::NOT_FOUND,
            "The public host serves only Twilio's webhook and the unsubscribe links.",
        )
            .into_response(),
        Audience::Stranger => (
            StatusCode::MISDIRECTED_REQUEST,
            "This server answers only to localhost, 127.0.0.1, [::1] and the host of WEBHOOK_PUBLIC_URL.",
        )
            .into_response(),
    }
}

/// Whether `headers` carry the API key, when one is set.
pub fn api_key_given(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let given = headers
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    bool::from(given.ct_eq(expected.as_bytes()))
}

/// The outbox holds confirmation codes: with an API key set, it needs the key too.
/// The outbox and the metrics: only with the API key, when one is set.
pub async fn api_key_required(
    State(expected): State<Option<Arc<str>>>,
    request: Request,
    next: Next,
) -> Response {
    if !api_key_given(expected.as_deref(), request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            "This route needs the API key (CHAT_API_KEY) in the x-api-key header.",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_scheme_host_and_port_or_any_port() {
        let origins = Origins(
            [
                "http://127.0.0.1:4000",
                "http://localhost:*",
                "https://app.example.org",
            ]
            .iter()
            .map(|o| OriginPattern::parse(o).unwrap())
            .collect(),
        );
        for (origin, ok) in [
            ("http://127.0.0.1:4000", true),
            ("http://127.0.0.1:4001", false),
            ("http://localhost:3000", true),
            ("http://LOCALHOST:5173", true),
            ("http://localhost", true),
            ("https://localhost:3000", false),
            ("https://app.example.org", true),
            ("https://app.example.org:8443", false),
            ("https://evil.example", false),
            ("http://localhost.evil.example:3000", false),
            ("null", false),
        ] {
            assert_eq!(origins.allows(origin), ok, "{origin}");
        }
        assert!(OriginPattern::parse("app.example.org").is_none());
        assert!(OriginPattern::parse("https://app.example.org/path").is_none());
    }

    #[test]
    fn hosts_are_loopback_names_or_the_public_one() {
        let hosts = Hosts::new(Some("https://abc.ngrok.app/twilio/webhook"));
        for (host, audience) in [
            ("localhost:4000", Audience::Loopback),
            ("127.0.0.1:4000", Audience::Loopback),
            ("127.0.0.1", Audience::Loopback),
            ("[::1]:4000", Audience::Loopback),
            ("app.localhost:4000", Audience::Loopback),
            ("abc.ngrok.app", Audience::Public),
            ("evil.example:4000", Audience::Stranger),
            ("localhost.evil.example", Audience::Stranger),
            ("10.0.0.5:4000", Audience::Stranger),
        ] {
            assert_eq!(hosts.audience(host), audience, "{host}");
        }
        assert_eq!(
            Hosts::new(None).audience("abc.ngrok.app"),
            Audience::Stranger
        );
    }
}
