//! Confirming addresses: codes issued into an address's record and checked against it.
//! Only the store is needed to check a code, so `verifyEmail` runs with no settings at all.

use std::sync::Arc;

use super::address::EmailAddress;
use super::codes::{self, EmailRecord, Issue};
use super::mailer::Mailer;
use super::messages;
use super::store::{self, Key, Store};
use crate::context_token::now_unix;
use crate::error::{ChatError, Result};

pub struct Confirmations {
    store: Arc<dyn Store>,
}

impl Confirmations {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Sends a code to `email` unless it is confirmed already or a code went out a moment
    /// ago, and says which. `context` names the chat in the email.
    pub async fn send_code(
        &self,
        email: &EmailAddress,
        context: &str,
        mailer: &dyn Mailer,
    ) -> Result<Issue> {
        let store = self.store.as_ref();
        let now = now_unix();
        let code = codes::new_code()?;
        let code_hash = codes::hash(email, &code);
        let key = Key::Email(email.clone());
        let issued = store::update(store, &key, |current: Option<&EmailRecord>| {
            let (next, issued) = codes::issue(current, email, code_hash.clone(), now);
            Ok((next.map(|n| (n, unverified_expiry(now))), issued))
        })
        .await?;
        if issued == Issue::Send
            && let Err(err) = mailer
                .send(&messages::confirmation(email, context, &code))
                .await
        {
            // Let the next try send a new code at once.
            let _ = store::update(store, &key, |current: Option<&EmailRecord>| {
                let next = current
                    .filter(|r| r.code.as_ref().is_some_and(|c| c.hash == code_hash))
                    .map(|r| EmailRecord {
                        code: None,
                        ..r.clone()
                    });
                Ok((next.map(|n| (n, unverified_expiry(now))), ()))
            })
            .await;
            return Err(ChatError::internal(format!(
                "The subscription is saved, but the confirmation code could not be sent: {} Try again.",
                err.message
            )));
        }
        Ok(issued)
    }

    /// `verifyEmail`: true when `code` confirms `email`.
    pub async fn verify_email(&self, email: &str, code: &str) -> Result<bool> {
        let email = EmailAddress::parse(email)?;
        let code = codes::normalise(code)?;
        let now = now_unix();
        let code_hash = codes::hash(&email, &code);
        let check = store::update(
            self.store.as_ref(),
            &Key::Email(email.clone()),
            |current: Option<&EmailRecord>| {
                let (next, check) = codes::check(current, &code_hash, now);
                Ok((
                    next.map(|n| {
                        let expiry = if n.verified {
                            None
                        } else {
                            unverified_expiry(now)
                        };
                        (n, expiry)
                    }),
                    check,
                ))
            },
        )
        .await?;
        tracing::info!(result = ?check, "email confirmation tried");
        codes::answer(check)
    }
}

/// An unconfirmed address is forgotten a day after its code expires.
fn unverified_expiry(now: u64) -> Option<u64> {
    Some(now + codes::CODE_TTL_SECS + 24 * 3600)
}
