//! The mailer port: SendGrid's v3 mail API in the cloud, an outbox directory in local mode.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use crate::address::EmailAddress;
use crate::error::{ChatError, Result};

/// One plain-text email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: EmailAddress,
    pub subject: String,
    pub text: String,
    /// The unsubscribe link, also sent as `List-Unsubscribe` (RFC 8058 one-click).
    pub unsubscribe: Option<String>,
}

pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<()>>;
}

pub const DEFAULT_SENDGRID_API_BASE_URL: &str = "https://api.sendgrid.com";
const FROM_NAME: &str = "Context Chat";

/// SendGrid's `POST /v3/mail/send`, from `notifications@DOMAIN`.
pub struct SendGrid {
    http: reqwest::Client,
    endpoint: Url,
    api_key: SecretString,
    from: String,
    timeout: Duration,
}

impl SendGrid {
    pub fn new(http: reqwest::Client, base_url: &Url, api_key: SecretString, domain: &str) -> Self {
        let mut endpoint = base_url.clone();
        endpoint.set_path("/v3/mail/send");
        Self {
            http,
            endpoint,
            api_key,
            from: format!("notifications@{domain}"),
            timeout: Duration::from_secs(10),
        }
    }

    async fn send_once(&self, body: &[u8]) -> std::result::Result<(), (bool, String)> {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            self.api_key.expose_secret()
        ))
        .map_err(|_| {
            (
                false,
                "the SendGrid API key is not a valid header value".to_owned(),
            )
        })?;
        auth.set_sensitive(true);
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                (
                    true,
                    format!("no answer from SendGrid ({})", without_url(&e)),
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // SendGrid explains a refusal as {"errors":[{"message": ...}]}; it never echoes the key.
        let detail = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.pointer("/errors/0/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let retry = status.as_u16() == 429 || status.is_server_error();
        Err((retry, format!("SendGrid answered {status}: {detail}")))
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

impl Mailer for SendGrid {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut body = json!({
                "personalizations": [{"to": [{"email": email.to.as_str()}]}],
                "from": {"email": self.from, "name": FROM_NAME},
                "subject": email.subject,
                "content": [{"type": "text/plain", "value": email.text}],
            });
            if let Some(link) = &email.unsubscribe {
                body["headers"] = json!({
                    "List-Unsubscribe": format!("<{link}>"),
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                });
            }
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let started = Instant::now();
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.send_once(&body).await {
                    Ok(()) => return Ok(()),
                    Err((true, why)) if attempt < 3 && started.elapsed() < self.timeout => {
                        tracing::warn!(attempt, reason = %why, "sending email failed; trying again");
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    Err((_, why)) => {
                        tracing::error!(attempt, reason = %why, "sending email failed");
                        return Err(ChatError::internal(
                            "The email could not be sent; try again later.",
                        ));
                    }
                }
            }
        })
    }
}

/// Local mode's mailer: each email (`.eml`) and text message (`.sms`) a text file in a
/// directory, newest last by name.
pub struct Outbox {
    dir: PathBuf,
    sequence: AtomicU64,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sequence: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every email and text message in the outbox, oldest first, as (file name, content).
    pub fn list(dir: &Path) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut all: Vec<(String, String)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.path()
                    .extension()
                    .is_some_and(|x| x == "eml" || x == "sms")
            })
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                Some((name, std::fs::read_to_string(e.path()).ok()?))
            })
            .collect();
        all.sort();
        all
    }
}

impl Outbox {
    /// Writes one file, whole or not at all (a reader never sees half of it).
    async fn write(&self, extension: &str, content: String) -> Result<String> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let n = self.sequence.fetch_add(1, Ordering::SeqCst);
        let name = format!("{millis:015}-{n:04}.{extension}");
        let dir = self.dir.clone();
        let file_name = name.clone();
        let write = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            std::fs::create_dir_all(&dir)?;
            let temporary = dir.join(format!("{file_name}.tmp"));
            // Owner-only: the outbox holds codes and addresses.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&temporary)?.write_all(content.as_bytes())?;
            std::fs::rename(&temporary, dir.join(&file_name))
        });
        let write = async {
            write
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        };
        write
            .await
            .map_err(|e| ChatError::internal(format!("outbox {}: {e}", self.dir.display())))?;
        Ok(name)
    }

    /// A text message, as local mode's SMS gateway sends it.
    pub async fn write_sms(&self, to: &str, text: &str) -> Result<()> {
        let name = self
            .write("sms", format!("To: {to}\nVia: SMS\n\n{text}"))
            .await?;
        tracing::info!(file = %name, "text message written to the outbox");
        Ok(())
    }
}

impl Mailer for Outbox {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let list_unsubscribe = email
                .unsubscribe
                .as_ref()
                .map(|link| format!("List-Unsubscribe: <{link}>\n"))
                .unwrap_or_default();
            let content = format!(
                "To: {}\nFrom: {FROM_NAME} <notifications@localhost>\nSubject: {}\n{list_unsubscribe}\n{}",
                email.to, email.subject, email.text
            );
            let name = self.write("eml", content).await?;
            tracing::info!(file = %name, "email written to the outbox");
            Ok(())
        })
    }
}
