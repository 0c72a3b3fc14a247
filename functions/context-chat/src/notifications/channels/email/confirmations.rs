//! Confirming addresses, per identity: a code confirms an address for the identity that
//! asked for it, and for no one else. Codes are kept as HMACs under a key derived from the
//! link secret ([`CodeKey`]).
//!
//! Every answer of `verifyEmail` but a match is the same `false`: a wrong code, no code,
//! an expired one, an unknown address. Tries made without a token are counted per address
//! apart from the identity's own, so that guessing at someone's address never uses up the
//! tries of the person who asked for the code.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::notifications::address::EmailAddress;
use crate::notifications::codes::{
    self, CodeKey, Confirmation, EmailRecord, Guesses, Issue, SenderLog,
};
use crate::notifications::keys::{self, CONFIRMATION_PREFIX, Subscription};
use crate::notifications::mailer::Mailer;
use crate::notifications::messages;
use crate::notifications::store::{self, Store, email_partition};

pub struct Confirmations {
    store: Arc<dyn Store>,
}

impl Confirmations {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Whether the subscription's address is confirmed for its identity. A subscription
    /// from the old integration's time also counts an address confirmed for anyone, as it
    /// did then.
    pub async fn is_confirmed(&self, subscription: &Subscription) -> Result<bool> {
        let key = keys::confirmation(&subscription.email, &subscription.identity);
        if store::read::<Confirmation>(self.store(), &key)
            .await?
            .is_some_and(|r| r.value.verified)
        {
            return Ok(true);
        }
        if subscription.per_identity {
            return Ok(false);
        }
        self.legacy_confirmed(&subscription.email).await
    }

    async fn legacy_confirmed(&self, email: &EmailAddress) -> Result<bool> {
        Ok(
            store::read::<EmailRecord>(self.store(), &keys::old_confirmation(email))
                .await?
                .is_some_and(|r| r.value.verified),
        )
    }

    /// Carries an address the old integration confirmed over to the identity that had
    /// subscribed it then (`previous`, its subscription as stored before this one).
    pub async fn carry_over(
        &self,
        identity: &str,
        email: &EmailAddress,
        previous: Option<&Subscription>,
    ) -> Result<bool> {
        let had_it = previous.is_some_and(|p| !p.per_identity && p.email == *email);
        if !had_it || !self.legacy_confirmed(email).await? {
            return Ok(false);
        }
        let now = now_unix();
        let key = keys::confirmation(email, identity);
        store::update(self.store(), &key, |current: Option<&Confirmation>| {
            let next = Confirmation {
                email: email.clone(),
                identity: identity.to_owned(),
                verified: true,
                verified_at: Some(now),
                code: None,
            };
            Ok((current.is_none().then_some((next, None)), ()))
        })
        .await?;
        Ok(true)
    }

    /// Sends `identity` a code for `email` unless the address is confirmed for it already
    /// or a code went out a moment ago, and says which. Over the identity's limits (see
    /// [`codes::admit`]) it is a `BadRequest` saying when to try again. `context` names
    /// the chat in the email.
    pub async fn send_code(
        &self,
        identity: &str,
        email: &EmailAddress,
        context: &str,
        mailer: &dyn Mailer,
        codes: &CodeKey,
    ) -> Result<Issue> {
        let store = self.store();
        let now = now_unix();
        let key = keys::confirmation(email, identity);
        if let Some(current) = store::read::<Confirmation>(store, &key).await? {
            let (_, issued) =
                codes::issue(Some(&current.value), (identity, email), String::new(), now);
            if issued != Issue::Send {
                return Ok(issued);
            }
        }
        // Counted where every process sees it, before anything is sent.
        store::update(
            store,
            &keys::email_sender(identity),
            |current: Option<&SenderLog>| {
                let next = codes::admit(current, email, now)?;
                Ok((Some((next, Some(now + codes::CODE_TTL_SECS))), ()))
            },
        )
        .await?;
        let code = codes::new_code()?;
        let code_hash = codes.hash(identity, email, &code);
        let issued = store::update(store, &key, |current: Option<&Confirmation>| {
            let (next, issued) = codes::issue(current, (identity, email), code_hash.clone(), now);
            Ok((next.map(|n| (n, unverified_expiry(now))), issued))
        })
        .await?;
        if issued == Issue::Send
            && let Err(err) = mailer
                .send(&messages::confirmation(email, context, &code))
                .await
        {
            // Let the next try send a new code at once.
            let _ = store::update(store, &key, |current: Option<&Confirmation>| {
                let next = current
                    .filter(|r| r.code.as_ref().is_some_and(|c| c.hash == code_hash))
                    .map(|r| Confirmation {
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

    /// `verifyEmail`: true only when `code` matches a code pending for `email`: for the
    /// identity `identity` when the caller's token named one, else for whichever identity
    /// asked for it. Every other answer is the same `false`.
    pub async fn verify_email(
        &self,
        email: &EmailAddress,
        code: &str,
        identity: Option<&str>,
        codes: &CodeKey,
    ) -> Result<bool> {
        let code = codes::normalise(code)?;
        let now = now_unix();
        let confirmed = match identity {
            Some(identity) => {
                self.try_code(codes, email, identity, &code, now, true)
                    .await?
            }
            None => {
                self.try_code_without_token(codes, email, &code, now)
                    .await?
            }
        };
        tracing::info!(
            confirmed,
            with_token = identity.is_some(),
            "email confirmation tried"
        );
        Ok(confirmed)
    }

    /// One try against one identity's pending code; `count_wrong` counts a miss against it.
    async fn try_code(
        &self,
        codes: &CodeKey,
        email: &EmailAddress,
        identity: &str,
        code: &str,
        now: u64,
        count_wrong: bool,
    ) -> Result<bool> {
        let code_hash = codes.hash(identity, email, code);
        let key = keys::confirmation(email, identity);
        let matched = store::update(self.store(), &key, |current: Option<&Confirmation>| {
            let (next, matched) = codes::check(current, &code_hash, now, count_wrong);
            let expiry = |n: &Confirmation| (!n.verified).then(|| unverified_expiry(now)).flatten();
            Ok((
                next.map(|n| {
                    let e = expiry(&n);
                    (n, e)
                }),
                matched,
            ))
        })
        .await?;
        if matched {
            store::update(
                self.store(),
                &keys::email_sender(identity),
                |current: Option<&SenderLog>| {
                    Ok((
                        codes::confirmed(current, email)
                            .map(|n| (n, Some(now + codes::CODE_TTL_SECS))),
                        (),
                    ))
                },
            )
            .await?;
        }
        Ok(matched)
    }

    /// Tries the code against every identity's pending code for the address, within the
    /// address's own allowance of tries made without a token.
    async fn try_code_without_token(
        &self,
        codes: &CodeKey,
        email: &EmailAddress,
        code: &str,
        now: u64,
    ) -> Result<bool> {
        // The try is counted before it is made, so that racing tries never exceed the
        // allowance.
        let allowed = store::update(
            self.store(),
            &keys::guesses(email),
            |current: Option<&Guesses>| {
                if !codes::guesses_left(current, now) {
                    return Ok((None, false));
                }
                let next = codes::guess(current, now);
                let expires = next.since + codes::CODE_TTL_SECS;
                Ok((Some((next, Some(expires))), true))
            },
        )
        .await?;
        if !allowed {
            return Ok(false);
        }
        let pending: Vec<Confirmation> = self
            .store()
            .query(&email_partition(email), CONFIRMATION_PREFIX)
            .await?
            .into_iter()
            .filter_map(|doc| serde_json::from_value(Value::Object(doc.fields)).ok())
            .filter(|r: &Confirmation| codes::tryable(r, now))
            .collect();
        for record in &pending {
            if self
                .try_code(codes, email, &record.identity, code, now, false)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// An unconfirmed address is forgotten a day after its code expires.
fn unverified_expiry(now: u64) -> Option<u64> {
    Some(now + codes::CODE_TTL_SECS + 24 * 3600)
}
