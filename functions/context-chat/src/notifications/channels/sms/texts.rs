//! Text messages: the SMS port (verifying a number by code, sending a notification), its
//! local implementation (an embedded Verify that writes to the outbox), and the texts.
//!
//! Twilio's implementation is `notifications::twilio_sms::TwilioSms` (Verify v2 and the Messages
//! resource). Both keep Verify's rules: a code lives 10 minutes, 5 wrong checks end it, at
//! most 5 sends to one number in those 10 minutes (`adr/016-sms.md`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::notifications::address::PhoneNumber;
use crate::notifications::digest::PendingMessage;
use crate::notifications::mailer::Outbox;

/// How long a verification code is valid (Verify's default).
pub const CODE_TTL_SECS: u64 = 600;
/// Wrong checks before a verification ends (Verify: 60202).
pub const MAX_CHECKS: u32 = 5;
/// Sends to one number within one verification (Verify: 60203).
pub const MAX_SENDS: u32 = 5;

pub use crate::sms_gateway::{Delivery, SmsGateway, refusals};

/// Local mode's SMS: an embedded Verify that keeps Verify's rules in memory, and every text
/// (codes included) written to the outbox.
pub struct LocalSms {
    outbox: Arc<Outbox>,
    verifications: Mutex<HashMap<PhoneNumber, LocalVerification>>,
}

struct LocalVerification {
    code: String,
    started_at: u64,
    sends: u32,
    checks: u32,
}

impl LocalSms {
    pub fn new(outbox: Arc<Outbox>) -> Self {
        Self {
            outbox,
            verifications: Mutex::new(HashMap::new()),
        }
    }

    fn live(map: &mut HashMap<PhoneNumber, LocalVerification>, to: &PhoneNumber, now: u64) {
        if map
            .get(to)
            .is_some_and(|v| now >= v.started_at + CODE_TTL_SECS)
        {
            map.remove(to);
        }
    }
}

impl SmsGateway for LocalSms {
    fn start_verification<'a>(&'a self, to: &'a PhoneNumber) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let now = now_unix();
            let code = {
                let mut map = self.verifications.lock().unwrap_or_else(|p| p.into_inner());
                Self::live(&mut map, to, now);
                let verification = match map.get_mut(to) {
                    Some(v) => v,
                    None => map.entry(to.clone()).or_insert(LocalVerification {
                        code: six_digits()?,
                        started_at: now,
                        sends: 0,
                        checks: 0,
                    }),
                };
                if verification.sends >= MAX_SENDS {
                    return Err(refusals::too_many_sends());
                }
                verification.sends += 1;
                verification.code.clone()
            };
            let text = format!("Your Context Chat verification code is: {code}");
            self.outbox.write_sms(to.as_str(), &text).await
        })
    }

    fn check_verification<'a>(
        &'a self,
        to: &'a PhoneNumber,
        code: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut map = self.verifications.lock().unwrap_or_else(|p| p.into_inner());
            Self::live(&mut map, to, now_unix());
            let Some(verification) = map.get_mut(to) else {
                return Err(refusals::no_pending_code());
            };
            if verification.checks >= MAX_CHECKS {
                return Err(refusals::too_many_checks());
            }
            verification.checks += 1;
            if verification.code == code.trim() {
                map.remove(to);
                return Ok(true);
            }
            Ok(false)
        })
    }

    fn send<'a>(&'a self, to: &'a PhoneNumber, text: &'a str) -> BoxFuture<'a, Result<Delivery>> {
        Box::pin(async move {
            self.outbox.write_sms(to.as_str(), text).await?;
            Ok(Delivery::Accepted)
        })
    }
}

fn six_digits() -> Result<String> {
    let mut bytes = [0u8; 4];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| ChatError::internal("No randomness for a code."))?;
    Ok(format!("{:06}", u32::from_le_bytes(bytes) % 1_000_000))
}

/// What ends every notification by text: how to stop them (carriers require it).
pub const STOP_LINE: &str = "Reply STOP to stop";

/// The notification text: the context and author, as much of the latest message as fits in
/// one SMS segment (160 GSM-7 characters, 70 otherwise), and how to stop. A context or
/// author name too long for one segment makes it longer rather than unnamed.
pub fn notification_text(context: &str, messages: &[PendingMessage], more: u32) -> String {
    let total = messages.len() as u64 + u64::from(more);
    let latest = messages.last();
    let author = latest.map(|m| one_line(&m.author)).unwrap_or_default();
    let context = one_line(context);
    let head = match (total, latest) {
        (1, Some(_)) => format!("{author} in \"{context}\""),
        (_, Some(_)) => format!("{total} new messages in \"{context}\", last from {author}"),
        _ => format!("New messages in \"{context}\""),
    };
    let tail = format!("\n{STOP_LINE}");
    let body = latest.map(|m| one_line(&m.body)).unwrap_or_default();
    let bare = format!("{head}{tail}");
    if body.is_empty() {
        return bare;
    }
    let full = format!("{head}: {body}{tail}");
    let limit = if is_gsm7(&full) { 160 } else { 70 };
    if units(&full) <= limit {
        return full;
    }
    // Cut the quote to what fits, marking the cut; keep the quote out when little would.
    let room = limit.saturating_sub(units(&bare) + ": ...".len());
    if room < 12 {
        return bare;
    }
    let mut quote = String::new();
    let mut used = 0;
    for c in body.chars() {
        let u = char_units(c);
        if used + u > room {
            break;
        }
        used += u;
        quote.push(c);
    }
    format!("{head}: {}...{tail}", quote.trim_end())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// GSM 03.38's default alphabet, and its extension (each counted twice).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€";

pub fn is_gsm7(text: &str) -> bool {
    text.chars()
        .all(|c| GSM7.contains(c) || GSM7_EXTENSION.contains(c))
}

fn char_units(c: char) -> usize {
    if GSM7_EXTENSION.contains(c) { 2 } else { 1 }
}

/// Characters as one segment counts them: extension characters twice in GSM-7; UTF-16
/// units otherwise.
pub fn units(text: &str) -> usize {
    if is_gsm7(text) {
        text.chars().map(char_units).sum()
    } else {
        text.encode_utf16().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn message(author: &str, body: &str) -> PendingMessage {
        PendingMessage::new("IM1", author, body, "2026-11-24T10:00:00Z", Some(1))
    }

    #[test]
    fn a_short_message_is_one_segment_naming_context_and_author_and_how_to_stop() {
        let text = notification_text("field-team", &[message("sam", "Truck leaves at 6.")], 0);
        assert_eq!(
            text,
            "sam in \"field-team\": Truck leaves at 6.\nReply STOP to stop"
        );
        assert!(units(&text) <= 160);
    }

    #[test]
    fn a_long_message_is_cut_to_one_segment() {
        let body = "word ".repeat(100);
        let text = notification_text("field-team", &[message("sam", &body)], 0);
        assert!(is_gsm7(&text));
        assert!(units(&text) <= 160, "{} units", units(&text));
        assert!(text.contains("...\nReply STOP to stop"), "{text}");
        assert!(text.starts_with("sam in \"field-team\": word word"));

        let arabic = "مرحبا ".repeat(40);
        let text = notification_text("فريق", &[message("سامي", &arabic)], 0);
        assert!(!is_gsm7(&text));
        assert!(units(&text) <= 70, "{} units", units(&text));
        assert!(text.ends_with(STOP_LINE));

        // Extension characters count twice.
        let braces = "{}".repeat(100);
        let text = notification_text("c", &[message("a", &braces)], 0);
        assert!(units(&text) <= 160);
    }

    #[test]
    fn several_messages_say_how_many_and_who_wrote_last() {
        let text = notification_text(
            "field-team",
            &[message("sam", "one"), message("kim", "two")],
            3,
        );
        assert_eq!(
            text,
            "5 new messages in \"field-team\", last from kim: two\nReply STOP to stop"
        );
    }

    #[test]
    fn a_name_too_long_for_one_segment_is_kept_whole() {
        let context = "c".repeat(200);
        let text = notification_text(&context, &[message("sam", "hello")], 0);
        assert!(text.contains(&context));
        assert!(text.ends_with(STOP_LINE));
    }

    #[tokio::test]
    async fn the_embedded_verify_keeps_verifys_rules() {
        let dir = std::env::temp_dir().join(format!("sms-outbox-{}", std::process::id()));
        let sms = LocalSms::new(Arc::new(Outbox::new(&dir)));
        let to = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(
            sms.check_verification(&to, "123456")
                .await
                .unwrap_err()
                .kind,
            ErrorKind::BadRequest
        );
        for _ in 0..MAX_SENDS {
            sms.start_verification(&to).await.unwrap();
        }
        assert_eq!(
            sms.start_verification(&to).await.unwrap_err().kind,
            ErrorKind::TooManyRequests
        );
        let sent = Outbox::list(&dir);
        assert_eq!(sent.len(), MAX_SENDS as usize);
        let code = sent[0].1.rsplit(' ').next().unwrap().trim().to_owned();
        assert!(
            sent.iter().all(|(_, s)| s.ends_with(&code)),
            "the same code each time"
        );
        for _ in 0..MAX_CHECKS - 1 {
            assert!(!sms.check_verification(&to, "000000x").await.unwrap());
        }
        assert!(sms.check_verification(&to, &code).await.unwrap());
        // Used: gone.
        assert!(sms.check_verification(&to, &code).await.is_err());
        // Five wrong checks end it.
        sms.verifications.lock().unwrap().clear();
        sms.start_verification(&to).await.unwrap();
        for _ in 0..MAX_CHECKS {
            assert!(!sms.check_verification(&to, "x").await.unwrap());
        }
        assert_eq!(
            sms.check_verification(&to, "x").await.unwrap_err().kind,
            ErrorKind::TooManyRequests
        );
        // Expired after 10 minutes.
        sms.verifications
            .lock()
            .unwrap()
            .get_mut(&to)
            .unwrap()
            .started_at -= CODE_TTL_SECS;
        assert_eq!(
            sms.check_verification(&to, "x").await.unwrap_err().kind,
            ErrorKind::BadRequest
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
