//! What the whole deployment may spend on text messages (issue 30, M3): codes and
//! notification texts per UTC day, for everyone together and per destination number,
//! counted in the store where every process sees them; and the countries texts may go to.
//! The per-identity limits ([`crate::notifications::phones`]) come first; these cap what N identities can
//! make a deployment pay.

use std::sync::Arc;

pub use super::policy::{DEFAULT_DAILY_CODES, DEFAULT_DAILY_TEXTS, MAX_DAILY, SmsPolicy};
use crate::clock::now_unix;
use crate::error::{ChatError, Result};
use crate::notifications::address::PhoneNumber;
use crate::notifications::keys;
use crate::notifications::store::{Count, Created, Store};

/// Codes one number gets a day, whoever asks (an identity gets 5 a day, across numbers;
/// Verify allows 5 to a number in 10 minutes).
pub const CODES_PER_NUMBER_PER_DAY: u32 = 10;
/// Notification texts one number gets a day, whatever the contexts (digests fold a context's
/// messages into one text per window, so a person in busy rooms still gets most).
pub const TEXTS_PER_NUMBER_PER_DAY: u32 = 30;
const DAY_SECS: u64 = 24 * 3600;

/// What a text is for: each has its own budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spending {
    Code,
    Text,
}

impl Spending {
    pub fn as_str(self) -> &'static str {
        match self {
            Spending::Code => "CODES",
            Spending::Text => "TEXTS",
        }
    }
}

/// The budgets, counted in the store.
pub struct SmsBudgets {
    store: Arc<dyn Store>,
}

impl SmsBudgets {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Counts one `what` to `to` against today's budgets, the deployment's and the number's,
    /// in one store round trip; past either, `TooManyRequests` with the seconds to the next
    /// UTC day, and nothing counted. Counted before the send, and not given back when Twilio
    /// refuses: a budget caps what may have been paid for.
    pub async fn spend(&self, what: Spending, to: &PhoneNumber, policy: &SmsPolicy) -> Result<()> {
        let now = now_unix();
        let day = now / DAY_SECS;
        let expires_at = (day + 2) * DAY_SECS;
        let per_number = match what {
            Spending::Code => CODES_PER_NUMBER_PER_DAY,
            Spending::Text => TEXTS_PER_NUMBER_PER_DAY,
        };
        let counts = vec![
            Count {
                key: keys::sms_spent(what.as_str(), day, None),
                max: u64::from(match what {
                    Spending::Code => policy.daily_codes,
                    Spending::Text => policy.daily_texts,
                }),
                expires_at,
            },
            Count {
                key: keys::sms_spent(what.as_str(), day, Some(to)),
                max: u64::from(per_number),
                expires_at,
            },
        ];
        let retry = ((day + 1) * DAY_SECS).saturating_sub(now).max(1);
        match self.store.create_counted(counts, Vec::new()).await? {
            Created::Done | Created::Exists => Ok(()),
            Created::OverLimit(which) => {
                let deployment = which == 0;
                crate::metrics::limited(crate::metrics::Limit::SmsBudget);
                crate::metrics::count(match (what, deployment) {
                    (_, false) => crate::metrics::Counter::SmsNumberBudgetReached,
                    (Spending::Code, true) => crate::metrics::Counter::SmsCodeBudgetReached,
                    (Spending::Text, true) => crate::metrics::Counter::SmsTextBudgetReached,
                });
                tracing::warn!(
                    what = what.as_str(),
                    budget = if deployment { "deployment" } else { "number" },
                    retry_after = retry,
                    "an SMS budget for today is spent"
                );
                let noun = match what {
                    Spending::Code => "verification codes",
                    Spending::Text => "text messages",
                };
                let message = if deployment {
                    format!("This service has sent all the {noun} it may send today.")
                } else {
                    format!("This number has been sent all the {noun} it may get today.")
                };
                Err(ChatError::too_many(&message, retry))
            }
        }
    }
}
