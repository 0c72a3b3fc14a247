//! The chat widget (`widget/`; its build copies the loader and the app into `assets/widget/`,
//! which the repository keeps so that `cargo run -p chatctl -- serve` needs no npm) as
//! `chatctl serve` serves it: the loader and
//! its app chunk under `/widget/VERSION/` (cached for good) and `/widget/latest/` (five
//! minutes), as the cloud's CloudFront does; and the demo that chats in it, in local mode: on
//! the start page, alex and sam side by side in `general`; at `/chat?identity=…`, one person.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use context_chat::context_token::now_unix;
use context_chat::dev_token::DevIssuerSource;
use serde::Deserialize;

use crate::pages::escape_html;

const MANIFEST: &str = include_str!("../assets/widget/manifest.json");

/// The widget's files that local mode serves (the Twilio chunk is the cloud's only).
const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "context-chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/widget/context-chat.js"),
    ),
    (
        "context-chat.js.map",
        "application/json",
        include_bytes!("../assets/widget/context-chat.js.map"),
    ),
    (
        "context-chat-app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/widget/context-chat-app.js"),
    ),
    (
        "context-chat-app.js.map",
        "application/json",
        include_bytes!("../assets/widget/context-chat-app.js.map"),
    ),
    ("manifest.json", "application/json", MANIFEST.as_bytes()),
];

/// The demo's glue: each demo widget asks this server's dev token API for fresh context tokens.
const DEMO_JS: &str = r#"'use strict';
for (const chat of document.querySelectorAll('context-chat[data-identity]')) {
  const query = new URLSearchParams({ identity: chat.dataset.identity, context: chat.dataset.contexts, roles: chat.dataset.roles || '', ttl: '3600' });
  chat.getContextToken = async () => {
    const answer = await fetch('/token?' + query, { method: 'POST' });
    if (!answer.ok) throw new Error('no context token: HTTP ' + answer.status);
    return (await answer.json()).token;
  };
}
"#;

/// A page that runs the widget: its own scripts, and requests to this server only.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The loader's version and integrity, from the build's manifest.
pub struct Loader {
    pub version: String,
    pub integrity: String,
}

pub static LOADER: LazyLock<Loader> = LazyLock::new(|| {
    let manifest: serde_json::Value = serde_json::from_str(MANIFEST).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Loader {
        version: text(&manifest["version"]),
        integrity: text(&manifest["loader"]["integrity"]),
    }
});

/// The script tag that embeds the widget, as a platform's page writes it.
pub fn script_tag() -> String {
    format!(
        r#"<script src="/widget/{}/context-chat.js" integrity="{}" crossorigin="anonymous"></script>"#,
        LOADER.version, LOADER.integrity
    )
}

/// Local mode's issuer signs the demo's first tokens.
pub struct Demo {
    pub issuer: Arc<DevIssuerSource>,
}

pub fn routes(demo: Option<Arc<Demo>>) -> Router {
    let router = Router::new()
        .route("/widget/{version}/{file}", get(file))
        .route("/widget/demo.js", get(demo_js));
    match demo {
        Some(demo) => router.route("/chat", get(chat_page).with_state(demo)),
        None => router,
    }
}

async fn file(Path((version, name)): Path<(String, String)>) -> Response {
    let latest = version == "latest";
    let found = FILES.iter().find(|(n, _, _)| *n == name);
    let Some((_, media_type, bytes)) = found.filter(|_| latest || version == LOADER.version) else {
        return (StatusCode::NOT_FOUND, "No such file.").into_response();
    };
    let cache = if latest {
        "public, max-age=300"
    } else {
        "public, max-age=31536000, immutable"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            // The loader fetches its chunks with CORS (Subresource Integrity).
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        *bytes,
    )
        .into_response()
}

async fn demo_js() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        DEMO_JS,
    )
        .into_response()
}

/// One demo widget: `identity` in `contexts`, `room` shown first; its first context token
/// signed here (expired already when `expired`, so that the widget must ask for a fresh one).
pub struct Seat<'a> {
    pub identity: &'a str,
    pub contexts: &'a [&'a str],
    pub room: Option<&'a str>,
    pub lang: Option<&'a str>,
    pub expired: bool,
    /// Closed behind the launcher button (floating), rather than open.
    pub launcher: bool,
    /// Roles other than member, `context:role`.
    pub roles: &'a [(&'a str, &'a str)],
}

impl Seat<'_> {
    /// The element, or why there is none.
    pub async fn html(&self, issuer: &DevIssuerSource) -> Result<String, String> {
        let issuer = issuer.get().await.map_err(|e| e.message)?;
        let now = now_unix();
        let (from, lifetime) = if self.expired {
            (now - 600, 60)
        } else {
            (now, 3600)
        };
        let token = issuer
            .sign_with_roles(self.identity, self.contexts, self.roles, from, lifetime)
            .map_err(|e| e.message)?;
        let optional = |name: &str, value: Option<&str>| {
            value
                .map(|v| format!(r#" {name}="{}""#, escape_html(v)))
                .unwrap_or_default()
        };
        Ok(format!(
            r#"<context-chat api-url="/graphql" transport="local" {shown} data-identity="{identity}" data-contexts="{contexts}" data-roles="{roles}"{room}{lang} token="{token}"></context-chat>"#,
            roles = escape_html(
                &self
                    .roles
                    .iter()
                    .map(|(c, r)| format!("{c}:{r}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            shown = if self.launcher { "floating" } else { "open" },
            identity = escape_html(self.identity),
            contexts = escape_html(&self.contexts.join(",")),
            room = optional("room", self.room),
            lang = optional("lang", self.lang),
            token = escape_html(&token),
        ))
    }
}

#[derive(Deserialize)]
struct ChatQuery {
    identity: Option<String>,
    contexts: Option<String>,
    room: Option<String>,
    lang: Option<String>,
    #[serde(default)]
    expired: bool,
    /// A floating launcher that loads the chat when pressed, instead of the chat open at once.
    #[serde(default)]
    launcher: bool,
    /// `announcements:reader,general:moderator`.
    roles: Option<String>,
}

/// `/chat?identity=sam&contexts=general,random&room=general&lang=de&expired=true&launcher=true&roles=general:reader`:
/// one person's widget on a page of its own (a second tab, or a test's).
async fn chat_page(
    State(demo): State<Arc<Demo>>,
    query: Result<Query<ChatQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            "identity, contexts, room, lang: text; expired: true or false.",
        )
            .into_response();
    };
    let identity = q.identity.as_deref().unwrap_or("alex");
    let contexts = q.contexts.as_deref().unwrap_or("general,random");
    let contexts: Vec<&str> = contexts.split(',').filter(|c| !c.is_empty()).collect();
    let roles: Vec<(&str, &str)> = q
        .roles
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|r| r.split_once(':'))
        .collect();
    let seat = Seat {
        identity,
        contexts: &contexts,
        room: q.room.as_deref(),
        lang: q.lang.as_deref(),
        expired: q.expired,
        launcher: q.launcher,
        roles: &roles,
    };
    let element = match seat.html(&demo.issuer).await {
        Ok(element) => element,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let lang = escape_html(q.lang.as_deref().unwrap_or("en"));
    let title = escape_html(identity);
    let page = format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Context Chat · {title}</title>
<style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; padding: 0 1rem; }}</style>
</head>
<body>
<main>
<h1>Chat as {title}</h1>
{element}
</main>
{script}
<script src="/widget/demo.js"></script>
</body>
</html>
"#,
        script = script_tag(),
    );
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        )],
        Html(page),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(version: &str, name: &str) -> Response {
        file(Path((version.to_owned(), name.to_owned()))).await
    }

    fn header(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn a_version_is_cached_for_good_latest_for_minutes_and_nothing_else_is_served() {
        let versioned = get(&LOADER.version, "context-chat-app.js").await;
        assert_eq!(versioned.status(), StatusCode::OK);
        assert_eq!(
            header(&versioned, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&versioned, header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
        assert!(header(&versioned, header::CONTENT_TYPE).starts_with("text/javascript"));
        let latest = get("latest", "context-chat.js").await;
        assert_eq!(
            header(&latest, header::CACHE_CONTROL),
            "public, max-age=300"
        );
        for (version, name) in [
            ("0.0.1", "context-chat.js"),
            ("latest", "context-chat-twilio.js"),
            ("latest", "../Cargo.toml"),
            ("latest", ""),
        ] {
            assert_eq!(
                get(version, name).await.status(),
                StatusCode::NOT_FOUND,
                "{version}/{name}"
            );
        }
    }

    #[test]
    fn the_loader_served_is_the_one_the_manifest_names() {
        assert!(!LOADER.version.is_empty());
        let (_, _, bytes) = FILES[0];
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, bytes);
        use base64::Engine as _;
        let integrity = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        );
        assert_eq!(integrity, LOADER.integrity);
    }
}
