//! Local mode's development authorization server: what the platform's identity provider
//! (Auth0, Cognito, Keycloak, …) does in production, so that the platform API can be tried
//! and tested on one machine. `POST /oauth/token` grants client-credentials access tokens
//! (RFC 6749 §4.4) to the one client it knows, RS256 signed with a key whose JWKS is at
//! `/.well-known/platform-jwks.json`. The key and the client's secret are made on first
//! start and kept in the data directory (mode 0600).

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::KeyPair;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use context_chat::context_token::now_unix;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::error::{CliError, Result};

pub const TOKEN_PATH: &str = "/oauth/token";
pub const JWKS_PATH: &str = "/.well-known/platform-jwks.json";
/// The audience of the development access tokens (the platform API's identifier).
pub const AUDIENCE: &str = "context-chat-platform";
/// What the development client may ask for, and gets when it names no scope.
const SCOPES: [&str; 2] = ["chat:read", "chat:admin"];
const TOKEN_TTL_SECS: u64 = 3600;
pub const KEY_FILE: &str = "platform-auth-private.pem";
pub const CLIENT_FILE: &str = "platform-client.json";

/// The development client's credentials, as a platform backend would be given them.
#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
}

pub struct DevAuthServer {
    pub issuer: String,
    pub client: Client,
    key: EncodingKey,
    kid: String,
    jwks: Value,
}

impl DevAuthServer {
    /// The data directory's server for `issuer` (`http://HOST:PORT/`), made on first start.
    pub fn load_or_create(data_dir: &Path, issuer: String) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(CliError::file(data_dir))?;
        let key_path = data_dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&key_path) {
            Ok(pem) => pem,
            Err(_) => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("key"))?;
                let der = pair.as_der().map_err(|_| failed("key"))?;
                let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
                crate::dev::write_private(&key_path, &pem)?;
                tracing::info!(path = %key_path.display(), "made the development authorization server's key");
                pem
            }
        };
        let unreadable = || {
            CliError::Failed(format!(
                "{} is not an RSA PKCS#8 PEM (delete it to make a new one)",
                key_path.display()
            ))
        };
        let der = pem::parse(&pem).map_err(|_| unreadable())?;
        let pair = RsaKeyPair::from_pkcs8(der.contents()).map_err(|_| unreadable())?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 thumbprint: the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]});
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| unreadable())?;
        Ok(Self {
            issuer,
            client: load_or_create_client(data_dir)?,
            key,
            kid,
            jwks,
        })
    }

    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(TOKEN_PATH, post(token))
            .route(JWKS_PATH, get(jwks))
            .with_state(self)
    }

    /// An access token for the client with `scopes`, valid from `now`.
    pub fn sign(&self, scopes: &[&str], now: u64) -> Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": self.issuer,
            "sub": format!("{}@clients", self.client.client_id),
            "aud": AUDIENCE,
            "azp": self.client.client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_SECS,
            "scope": scopes.join(" "),
            "gty": "client-credentials",
            "jti": random_id(16)?,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| failed("access token"))
    }
}

fn failed(what: &str) -> CliError {
    CliError::Failed(format!(
        "could not make the development authorization server's {what}"
    ))
}

/// `len` random bytes, base64url.
fn random_id(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| failed("random bytes"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn load_or_create_client(data_dir: &Path) -> Result<Client> {
    let path = data_dir.join(CLIENT_FILE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(client) = serde_json::from_str::<Client>(&text)
    {
        return Ok(client);
    }
    let random = random_id;
    let client = Client {
        client_id: format!(
            "dev-platform-{}",
            random(6)?.to_lowercase().replace(['-', '_'], "x")
        ),
        client_secret: random(32)?,
    };
    let text = serde_json::to_string_pretty(&client).map_err(|_| failed("client"))?;
    crate::dev::write_private(&path, &text)?;
    Ok(client)
}

/// A token request, from a form (RFC 6749) or JSON (as Auth0 also takes).
#[derive(Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
}

/// RFC 6749 §5.2's error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1), form-urlencoded parts.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

async fn token(
    State(server): State<Arc<DevAuthServer>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let request: TokenRequest = if json_body {
        match serde_json::from_str(&body) {
            Ok(request) => request,
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The body is not a JSON object of strings.",
                );
            }
        }
    } else {
        let mut request = TokenRequest::default();
        for (name, value) in url::form_urlencoded::parse(body.as_bytes()).into_owned() {
            let slot = match name.as_str() {
                "grant_type" => &mut request.grant_type,
                "client_id" => &mut request.client_id,
                "client_secret" => &mut request.client_secret,
                "audience" => &mut request.audience,
                "scope" => &mut request.scope,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("{name} is given twice."),
                );
            }
        }
        request
    };
    if request.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    let (id, secret) = match basic_credentials(&headers) {
        Some(credentials) => credentials,
        None => (
            request.client_id.unwrap_or_default(),
            request.client_secret.unwrap_or_default(),
        ),
    };
    let known = id == server.client.client_id
        && bool::from(
            secret
                .as_bytes()
                .ct_eq(server.client.client_secret.as_bytes()),
        );
    if !known {
        tracing::info!("token request refused: unknown client or wrong secret");
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unknown client or wrong secret.",
        );
    }
    if let Some(audience) = &request.audience
        && audience != AUDIENCE
    {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "access_denied",
            &format!("This server grants tokens for the audience {AUDIENCE} only."),
        );
    }
    let scopes: Vec<&str> = match request.scope.as_deref().map(str::split_whitespace) {
        Some(asked) => {
            let asked: Vec<&str> = asked.collect();
            if let Some(unknown) = asked.iter().find(|s| !SCOPES.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!(
                        "The scope {unknown} is not granted to this client (it may have {}).",
                        SCOPES.join(" ")
                    ),
                );
            }
            if asked.is_empty() {
                SCOPES.to_vec()
            } else {
                asked
            }
        }
        None => SCOPES.to_vec(),
    };
    match server.sign(&scopes, now_unix()) {
        Ok(access_token) => {
            tracing::info!(client = %server.client.client_id, scope = %scopes.join(" "), "development access token issued");
            let mut response = Json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECS,
                "scope": scopes.join(" "),
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &err.to_string(),
        ),
    }
}

async fn jwks(State(server): State<Arc<DevAuthServer>>) -> Json<Value> {
    Json(server.jwks.clone())
}
