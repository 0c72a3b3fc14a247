//! The pages a person opens in a browser on `chatctl serve`: a start page at `/` and GraphiQL
//! at `GET /graphql`. GraphiQL comes from pinned copies inside this binary
//! (`assets/graphiql/`, made by `scripts/vendor-graphiql`), never from a CDN, so both pages work
//! on a machine without internet and always show the same versions.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use context_chat::dev_token::DevIssuerSource;

/// The pinned GraphiQL, part of every asset's URL so that a browser may keep an asset for good.
pub const GRAPHIQL_VERSION: &str = "3.8.3";
const ASSETS: &str = "/graphiql";

/// Each asset's name, media type and bytes.
const GRAPHIQL_ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "start.js",
        "text/javascript; charset=utf-8",
        GRAPHIQL_START.as_bytes(),
    ),
];

/// Mounts GraphiQL on the page: the query and variables a link gave (`?query=…&variables=…`,
/// as the start page's links do), and an `x-api-key` header to fill in when the server wants one.
const GRAPHIQL_START: &str = r#"'use strict';
(function () {
  var root = document.getElementById('graphiql');
  var params = new URLSearchParams(window.location.search);
  var props = {
    fetcher: GraphiQL.createFetcher({ url: root.dataset.endpoint }),
    defaultQuery: root.dataset.defaultQuery,
    shouldPersistHeaders: false,
  };
  if (params.has('query')) props.query = params.get('query');
  if (params.has('variables')) props.variables = params.get('variables');
  if (root.dataset.apiKey === 'required') {
    props.defaultHeaders = '{"x-api-key": ""}';
    props.defaultEditorToolsVisibility = 'headers';
  }
  root.textContent = '';
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
"#;

/// What the query editor holds when no link gave a query.
const DEFAULT_QUERY: &str = "# Context Chat's GraphQL API.
# A context token goes in the variables below;
# then press the run button.
query verifyToken($token: ID!) {
  verifyToken(token: $token) {
    identity
    contexts
  }
}
";

/// What the start page says about this server.
pub struct StartPage {
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// Where the settings came from, as the banner says it.
    pub mode: String,
    pub api_key_required: bool,
    /// Local mode's issuer: the page offers a fresh sample token.
    pub issuer: Option<Arc<DevIssuerSource>>,
    /// Local mode's development authorization server (the platform API's keys).
    pub platform_keys: bool,
    /// Local mode with the embedded Conversations service and no API key: the page shows the
    /// chat widget, alex and sam side by side.
    pub demo: bool,
}

/// `/`, `GET /graphql` is [`graphiql`], and the assets under `/graphiql/VERSION/`.
pub fn routes(start: Arc<StartPage>) -> Router {
    Router::new()
        .route("/", get(start_page).with_state(start))
        .route(&format!("{ASSETS}/{{version}}/{{file}}"), get(asset))
}

/// The identity, contexts and lifetime of the sample token that the banner prints and the
/// start page offers.
pub const SAMPLE_IDENTITY: &str = "alex";
pub const SAMPLE_CONTEXTS: [&str; 2] = ["general", "random"];
pub const SAMPLE_LIFETIME_SECS: u64 = 12 * 3600;

/// A `curl` line that asks `verifyToken` about `token`, for the banner and the start page.
pub fn verify_token_curl(origin: &str, token: &str) -> String {
    format!(
        "curl -s {origin}/graphql -H 'content-type: application/json' \\\n    -d '{{\"query\":\"query {{ verifyToken(token: \\\"{token}\\\") {{ identity contexts }} }}\"}}'"
    )
}

/// GraphiQL's page, answering `GET /graphql`.
pub fn graphiql(api_key_required: bool) -> Html<String> {
    let v = GRAPHIQL_VERSION;
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Context Chat · GraphiQL</title>
<link rel="stylesheet" href="{ASSETS}/{v}/graphiql.min.css">
<style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql" data-endpoint="/graphql" data-api-key="{key}" data-default-query="{query}">Loading GraphiQL…</div>
<script src="{ASSETS}/{v}/react.production.min.js"></script>
<script src="{ASSETS}/{v}/react-dom.production.min.js"></script>
<script src="{ASSETS}/{v}/graphiql.min.js"></script>
<script src="{ASSETS}/{v}/start.js"></script>
</body>
</html>
"#,
        key = if api_key_required { "required" } else { "none" },
        query = escape_html(DEFAULT_QUERY),
    ))
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = GRAPHIQL_ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .filter(|_| version == GRAPHIQL_VERSION);
    let Some((_, media_type, bytes)) = found else {
        return (StatusCode::NOT_FOUND, "No such asset.").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            // The version is in the URL, so the bytes behind it never change.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        *bytes,
    )
        .into_response()
}

async fn start_page(State(page): State<Arc<StartPage>>) -> Response {
    let token = match &page.issuer {
        Some(issuer) => match issuer.get().await {
            Ok(issuer) => issuer
                .sign(
                    SAMPLE_IDENTITY,
                    &SAMPLE_CONTEXTS,
                    context_chat::context_token::now_unix(),
                    SAMPLE_LIFETIME_SECS,
                )
                .ok(),
            Err(_) => None,
        },
        None => None,
    };
    let demo = match (&page.issuer, page.demo) {
        (Some(issuer), true) => demo_html(issuer).await,
        _ => None,
    };
    let policy = match demo {
        // The widget's scripts, and its requests to this server.
        Some(_) => crate::widget::PAGE_POLICY,
        // Nothing but this page's own HTML and styles: no script, no request elsewhere.
        None => "default-src 'none'; style-src 'unsafe-inline'",
    };
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        )],
        Html(start_html(&page, token.as_deref(), demo.as_deref())),
    )
        .into_response()
}

/// The demo: alex and sam, each in a widget, both in `general` and `random`, `general` first.
async fn demo_html(issuer: &DevIssuerSource) -> Option<String> {
    let seat = |identity| crate::widget::Seat {
        identity,
        contexts: &SAMPLE_CONTEXTS,
        room: Some("general"),
        lang: None,
        expired: false,
        launcher: false,
        roles: &[],
    };
    let alex = seat("alex").html(issuer).await.ok()?;
    let sam = seat("sam").html(issuer).await.ok()?;
    Some(format!(
        r#"<section aria-labelledby="demo">
<h2 id="demo">Chat as alex and sam</h2>
<p>Two people in <code>general</code> and <code>random</code>, each in the chat widget a platform embeds:
write as one, read as the other. Open <a href="/chat?identity=sam">sam alone</a> in another tab, or anyone:
<code>/chat?identity=kim&amp;contexts=general</code>.</p>
<div class="pair">
{alex}
{sam}
</div>
</section>
{script}
<script src="/widget/demo.js"></script>
"#,
        script = crate::widget::script_tag(),
    ))
}

fn start_html(page: &StartPage, token: Option<&str>, demo: Option<&str>) -> String {
    let origin = &page.origin;
    let mut links = String::new();
    let mut link = |href: &str, text: &str, what: &str| {
        let _ = writeln!(
            links,
            r#"<li><a href="{}">{}</a>: {}</li>"#,
            escape_html(href),
            escape_html(text),
            what
        );
    };
    link("/graphql", "GraphiQL", "try the GraphQL API in the browser");
    if let Some(token) = token {
        let variables = format!(r#"{{"token": "{token}"}}"#);
        let href = format!(
            "/graphql?query={}&variables={}",
            url::form_urlencoded::byte_serialize(DEFAULT_QUERY.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(variables.as_bytes()).collect::<String>(),
        );
        link(
            &href,
            "verifyToken in GraphiQL",
            "with the sample token filled in",
        );
    }
    link(
        "/outbox",
        "Outbox",
        "the emails and texts written here instead of sent",
    );
    link(
        "/metrics",
        "Metrics",
        "the counters, in Prometheus's text format",
    );
    if page.issuer.is_some() {
        link(
            "/.well-known/jwks.json",
            "Context token keys",
            "the development issuer's JWKS",
        );
    }
    if page.platform_keys {
        link(
            "/.well-known/platform-jwks.json",
            "Platform API keys",
            "the development authorization server's JWKS",
        );
    }
    link("/healthz", "Health", "answers while the server runs");

    let mut sample = String::new();
    if let Some(token) = token {
        let _ = write!(
            sample,
            "<h2>Sample context token</h2>\n<p>For <code>{SAMPLE_IDENTITY}</code> in <code>{}</code>, \
             valid for {} hours:</p>\n<pre class=\"token\">{}</pre>\n<p>Try it:</p>\n<pre>{}</pre>\n\
             <p>More tokens: <code>curl -s -X POST '{origin}/token?identity=sam&amp;context=general'</code></p>\n",
            SAMPLE_CONTEXTS.join(", "),
            SAMPLE_LIFETIME_SECS / 3600,
            escape_html(token),
            escape_html(&verify_token_curl(origin, token)),
        );
    }
    let key_note = if page.api_key_required {
        "<p>An API key is required (<code>CHAT_API_KEY</code>): send it in the <code>x-api-key</code> header, \
         for <code>/graphql</code>, <code>/outbox</code> and <code>/metrics</code>.</p>\n"
    } else {
        ""
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Context Chat</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }}
.pair {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: 1rem; }}
pre {{ background: #f4f4f6; padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }}
code {{ background: #f4f4f6; padding: 0 .2rem; }}
</style>
</head>
<body>
<main>
<h1>Context Chat</h1>
<p>Chat rooms that follow your platform's permissions. This server answers at <code>{origin}</code>;
its settings: {mode}.</p>
{demo}{key_note}<h2>What this server offers</h2>
<ul>
{links}</ul>
{sample}</main>
</body>
</html>
"#,
        origin = escape_html(origin),
        mode = escape_html(&page.mode),
        demo = demo.unwrap_or_default(),
    )
}

/// Text as HTML text or attribute value.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_leaves_no_markup_and_keeps_newlines_in_attributes() {
        assert_eq!(
            escape_html("<a href=\"x\">it's & that</a>\n"),
            "&lt;a href=&quot;x&quot;&gt;it&#39;s &amp; that&lt;/a&gt;&#10;"
        );
    }

    #[test]
    fn the_vendored_assets_are_the_pinned_ones() {
        let sums = include_str!("../assets/graphiql/SHA256SUMS");
        let packages = include_str!("../assets/graphiql/PACKAGES");
        assert!(packages.contains(&format!("graphiql@{GRAPHIQL_VERSION} sha512-")));
        for (name, _, bytes) in GRAPHIQL_ASSETS.iter().filter(|(n, _, _)| *n != "start.js") {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
            let line = format!("{}  {name}", hex(digest.as_ref()));
            assert!(sums.lines().any(|l| l == line), "{name} is not as pinned");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
