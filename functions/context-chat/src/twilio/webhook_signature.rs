//! `X-Twilio-Signature` (`shared/twilio/twilio.md` section 3): HMAC-SHA1 with the account's
//! auth token over the URL exactly as Twilio requested it, followed, for a form body, by each
//! parameter's name and value sorted by name. A JSON body is covered through the `bodySHA256`
//! query parameter instead.
//!
//! Twilio signs "inconsistently" with or without the default port, so both forms of the URL
//! are tried, as Twilio's own validators do. Comparisons are constant-time (aws-lc's
//! `hmac::verify`).

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

/// Checks webhook signatures for one account.
pub struct SignatureChecker {
    key: hmac::Key,
}

impl SignatureChecker {
    pub fn new(auth_token: &SecretString) -> Self {
        Self {
            key: hmac::Key::new(
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                auth_token.expose_secret().as_bytes(),
            ),
        }
    }

    /// A form-encoded POST: `params` are the decoded body parameters (not the query's).
    pub fn check_form(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        let Some(signature) = decode(signature) else {
            return false;
        };
        let suffix = sorted_params(params);
        url_variants(url).into_iter().any(|url| {
            let mut message = url.into_bytes();
            message.extend_from_slice(suffix.as_bytes());
            hmac::verify(&self.key, &message, &signature).is_ok()
        })
    }

    /// A JSON body: the URL carries `bodySHA256`, the hex SHA-256 of the raw body, and the
    /// signature covers the URL alone.
    pub fn check_json(&self, url: &str, body: &[u8], signature: &str) -> bool {
        let Some(signature) = decode(signature) else {
            return false;
        };
        let Some(claimed) = query_value(url, "bodySHA256") else {
            return false;
        };
        let actual = hex(digest::digest(&digest::SHA256, body).as_ref());
        // Both are public (the hash is in the URL); the signature check below is what counts.
        if !claimed.eq_ignore_ascii_case(&actual) {
            return false;
        }
        url_variants(url)
            .into_iter()
            .any(|url| hmac::verify(&self.key, url.as_bytes(), &signature).is_ok())
    }
}

fn decode(signature: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(signature.trim())
        .ok()
        .filter(|s| s.len() == 20)
}

/// Names sorted; a repeated name contributes its values sorted and de-duplicated.
fn sorted_params(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_iter().fold(String::new(), |mut s, (k, v)| {
        s.push_str(k);
        s.push_str(v);
        s
    })
}

/// The URL as given, and with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A port is what follows the last ':' after any IPv6 literal's ']'.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[host_end..].rfind(':') {
        Some(colon) => {
            let (host, port) = authority.split_at(host_end + colon);
            if &port[1..] == default_port {
                variants.push(format!("{scheme}://{host}{tail}"));
            }
        }
        None => variants.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    variants
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_port_is_added_or_removed() {
        assert_eq!(
            url_variants("https://example.com/twilio/webhook?x=1"),
            [
                "https://example.com/twilio/webhook?x=1",
                "https://example.com:443/twilio/webhook?x=1"
            ]
        );
        assert_eq!(
            url_variants("https://example.com:443/hook"),
            ["https://example.com:443/hook", "https://example.com/hook"]
        );
        assert_eq!(
            url_variants("https://example.com:8443/hook"),
            ["https://example.com:8443/hook"]
        );
        assert_eq!(
            url_variants("http://[::1]/hook"),
            ["http://[::1]/hook", "http://[::1]:80/hook"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
    }

    #[test]
    fn repeated_parameters_are_sorted_and_deduplicated() {
        let params = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(sorted_params(&params), "ayazb2");
    }
}
