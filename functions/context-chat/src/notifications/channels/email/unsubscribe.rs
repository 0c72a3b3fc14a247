//! Unsubscribe links: the email's way to stop. A link names the context (as `channel`, the
//! word of links already sent) and the address and
//! carries an HMAC over both, so that only the recipient of an email can stop that context's
//! emails to that address. The key is derived from the account's auth token, which the
//! webhook (where the link is answered) and the notifier (which writes it) both hold.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::notifications::address::EmailAddress;

/// Where the link points, below the public base URL.
pub const PATH: &str = "/notifications/unsubscribe";

pub struct UnsubscribeSigner {
    key: hmac::Key,
}

impl UnsubscribeSigner {
    pub fn new(auth_token: &SecretString) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, auth_token.expose_secret().as_bytes());
        let derived = hmac::sign(&root, b"context-chat unsubscribe link v1");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    fn message(context: &str, email: &EmailAddress) -> Vec<u8> {
        format!("{context}\n{email}").into_bytes()
    }

    pub fn signature(&self, context: &str, email: &EmailAddress) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &Self::message(context, email)))
    }

    /// Constant-time (aws-lc's `hmac::verify`).
    pub fn check(&self, context: &str, email: &EmailAddress, signature: &str) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature.trim()) else {
            return false;
        };
        hmac::verify(&self.key, &Self::message(context, email), &signature).is_ok()
    }

    /// The link for one context and address, below `base`.
    pub fn link(&self, base: &Url, context: &str, email: &EmailAddress) -> String {
        let mut url = base.clone();
        let path = format!("{}{PATH}", base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("channel", context)
            .append_pair("email", email.as_str())
            .append_pair("sig", &self.signature(context, email));
        url.to_string()
    }
}

/// The page the link opens: one button that confirms (a POST to the same URL).
pub fn confirmation_page(context: &str, email: &str) -> String {
    page(
        "Stop these emails?",
        &format!(
            "<p>Stop emailing <b>{}</b> about new messages in <b>{}</b>?</p>\
             <form method=post><button type=submit>Stop these emails</button></form>",
            escape(email),
            escape(context)
        ),
    )
}

/// The answer to the POST: an HTTP status and a page.
pub fn result_page(context: &str, outcome: crate::Result<usize>) -> (u16, String) {
    match outcome {
        Ok(_) => (
            200,
            page(
                "Done",
                &format!(
                    "<p>No more emails about <b>{}</b> will be sent to this address. \
                     You can turn them on again in the chat.</p>",
                    escape(context)
                ),
            ),
        ),
        Err(err) => (
            err.kind.http_status(),
            page("Not done", &format!("<p>{}</p>", escape(&err.message))),
        ),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>{title}</title><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">\
         <h1>{title}</h1>{body}</body>"
    )
}

/// HTML text escaping, for the pages of links and the outbox.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_only_for_its_context_and_address() {
        let signer = UnsubscribeSigner::new(&SecretString::from("token"));
        let alex = EmailAddress::parse("alex@example.org").unwrap();
        let eve = EmailAddress::parse("eve@example.org").unwrap();
        let link = signer.link(
            &"https://api.example.org/".parse().unwrap(),
            "general",
            &alex,
        );
        assert!(link.starts_with("https://api.example.org/notifications/unsubscribe?channel=general&email=alex%40example.org&sig="));
        let sig = link.rsplit("sig=").next().unwrap();
        assert!(signer.check("general", &alex, sig));
        assert!(!signer.check("random", &alex, sig));
        assert!(!signer.check("general", &eve, sig));
        assert!(!signer.check("general", &alex, "AAAA"));
        let other = UnsubscribeSigner::new(&SecretString::from("another token"));
        assert!(!other.check("general", &alex, sig));
    }
}
