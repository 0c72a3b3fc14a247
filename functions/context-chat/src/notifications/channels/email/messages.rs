//! The texts of the two emails: the confirmation code, and new messages in a context.

use crate::notifications::address::EmailAddress;
use crate::notifications::codes::CODE_TTL_SECS;
use crate::notifications::digest::PendingMessage;
use crate::notifications::mailer::Email;

pub fn confirmation(to: &EmailAddress, context: &str, code: &str) -> Email {
    Email {
        to: to.clone(),
        unsubscribe: None,
        subject: format!("Your confirmation code: {code}"),
        text: format!(
            "Hello,\n\n\
             someone (we hope you) asked to be emailed about new messages in the chat \"{context}\".\n\n\
             Your confirmation code is: {code}\n\n\
             Enter it in the chat to confirm this address. It is valid for {hours} hours.\n\
             If you did not ask for this, ignore this email: nothing will be sent to you.\n",
            hours = CODE_TTL_SECS / 3600
        ),
    }
}

pub use crate::notifications::digest::MAX_QUOTE_CHARS;

pub fn new_messages(
    to: &EmailAddress,
    context: &str,
    messages: &[PendingMessage],
    more: u32,
    window_secs: u64,
    unsubscribe: Option<&str>,
) -> Email {
    let total = messages.len() as u64 + u64::from(more);
    let subject = if total == 1 {
        match messages.first() {
            Some(m) => format!("{} wrote in \"{context}\"", one_line(&m.author)),
            None => format!("A new message in \"{context}\""),
        }
    } else {
        format!("{total} new messages in \"{context}\"")
    };
    let mut text = format!(
        "{} in the chat \"{context}\" while you were away:\n\n",
        if total == 1 {
            "A new message".to_owned()
        } else {
            format!("{total} new messages")
        }
    );
    for m in messages {
        text.push_str(&format!(
            "{} wrote ({}):\n{}\n\n",
            one_line(&m.author),
            m.date,
            quote(&m.body)
        ));
    }
    if more > 0 {
        text.push_str(&format!(
            "… and {more} more. Open the chat to read them all.\n\n"
        ));
    }
    text.push_str(&format!(
        "--\nYou get this because {to} asked to be emailed about new messages in \"{context}\" \
         while offline, at most once every {} minutes.\n",
        window_secs.div_ceil(60)
    ));
    match unsubscribe {
        Some(link) => text.push_str(&format!("To stop these emails, open: {link}\n")),
        None => text.push_str(
            "To stop these emails, ask the administrator of your platform to remove this subscription.\n",
        ),
    }
    Email {
        to: to.clone(),
        subject,
        text,
        unsubscribe: unsubscribe.map(str::to_owned),
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(100)
        .collect()
}

fn quote(body: &str) -> String {
    let mut quoted: String = body.chars().take(MAX_QUOTE_CHARS).collect();
    if body.chars().count() > MAX_QUOTE_CHARS {
        quoted.push_str(" […]");
    }
    quoted
        .lines()
        .map(|l| format!("  > {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
