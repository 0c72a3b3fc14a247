//! `keygen`, `jwks` and `token`: what the old `generateToken` script and README key steps did;
//! `virgil-token`.

use std::io::Write as _;
use std::path::Path;

use context_chat::context_token::now_unix;
use context_chat::dev_keys::{self, ContextClaims, ContextTokenSigner, JwksShape};

use crate::error::{CliError, Result};

type Outcome = Result<()>;

pub fn keygen(kid: Option<String>, out_dir: &Path) -> Outcome {
    let key = dev_keys::generate_es256()?;
    let kid = kid.unwrap_or(key.kid);
    check_kid(&kid)?;
    std::fs::create_dir_all(out_dir).map_err(CliError::file(out_dir))?;
    let private = out_dir.join(format!("ecdsa-p256-{kid}-private.pem"));
    let public = out_dir.join(format!("ecdsa-p256-{kid}-public.pem"));
    write_private(&private, &key.private_pem)?;
    std::fs::write(&public, &key.public_pem).map_err(CliError::file(&public))?;
    println!("kid: {kid}");
    println!("private key: {}", private.display());
    println!("public key: {}", public.display());
    Ok(())
}

pub fn jwks(public_key: &Path, kid: Option<String>, legacy: bool) -> Outcome {
    let pem = read(public_key)?;
    let kid = match kid {
        Some(kid) => kid,
        None => dev_keys::thumbprint(&pem)?,
    };
    let shape = if legacy {
        JwksShape::Legacy
    } else {
        JwksShape::Rfc7517
    };
    let doc = dev_keys::jwks_json(&pem, &kid, shape)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| CliError::Failed(e.to_string()))?
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// Whom `chatctl token` signs for: `identity`, or with `count` > 1, `identity-1` … `-count`.
pub struct Subjects {
    pub identity: String,
    pub count: u32,
}

/// The optional `iss` and `aud` of a signed token.
pub struct Audience {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

pub fn token(
    private_key: &Path,
    kid: Option<String>,
    subjects: Subjects,
    contexts: Vec<String>,
    ttl: u64,
    Audience { issuer, audience }: Audience,
) -> Outcome {
    let pem = read(private_key)?;
    let kid = match kid {
        Some(kid) => kid,
        None => dev_keys::public_pem_of(&pem).and_then(|public| dev_keys::thumbprint(&public))?,
    };
    let identities: Vec<String> = match subjects.count {
        1 => vec![subjects.identity],
        n => (1..=n)
            .map(|i| format!("{}-{i}", subjects.identity))
            .collect(),
    };
    // Refuse here what the API would refuse, so the mistake shows where it was made.
    for identity in &identities {
        context_chat::names::check_identity(identity)?;
    }
    let contexts = context_chat::names::check_contexts(contexts)?;
    let signer = ContextTokenSigner::from_pem(&pem, &kid)?;
    let now = now_unix();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for sub in identities {
        let token = signer.sign(&ContextClaims {
            sub,
            contexts: contexts.clone(),
            iat: now,
            exp: now + ttl,
            iss: issuer.clone(),
            aud: audience.clone(),
            roles: Default::default(),
        })?;
        writeln!(out, "{token}").map_err(|e| CliError::Failed(format!("stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| CliError::Failed(format!("stdout: {e}")))?;
    Ok(())
}

/// A Virgil JWT from the `VIRGIL_*` variables; offline, so not on any ledger.
pub fn virgil_token(identity: &str, issued_at: Option<u64>, ttl: Option<u64>) -> Outcome {
    let max = context_chat::virgil::MAX_TTL_SECS;
    if ttl.is_some_and(|t| t == 0 || t > max) {
        return Err(CliError::usage(format!(
            "--ttl must be from 1 s to {max} s"
        )));
    }
    context_chat::names::check_identity(identity)?;
    let signer = context_chat::settings::virgil_signer_from_env(ttl).for_operator()?;
    println!(
        "{}",
        signer.mint(identity, issued_at.unwrap_or_else(now_unix))?
    );
    Ok(())
}

/// `90`, `90s`, `15m`, `12h` or `1d`, as seconds. A clap value parser, so its error is the
/// text clap shows beside the argument.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], &text[i..]),
        _ => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3600, 15m, 12h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

fn check_kid(kid: &str) -> Outcome {
    if kid.is_empty()
        || kid.len() > 128
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(CliError::usage(
            "a kid is 1 to 128 letters, digits, - _ or .",
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(CliError::file(path))
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, contents: &str) -> Outcome {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(CliError::file(path))?;
    file.write_all(contents.as_bytes())
        .map_err(CliError::file(path))
}

#[cfg(test)]
mod tests {
    use super::parse_duration_secs;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("12h"), Ok(43_200));
        assert_eq!(parse_duration_secs("1d"), Ok(86_400));
        for bad in ["", "h", "0", "-1h", "5w", "1.5h"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
