//! The counters an operator reads at 3 a.m.: one process-wide set, counted with atomics where
//! things happen, and read two ways: each Lambda invocation writes what moved during it as one
//! CloudWatch Embedded Metric Format line ([`take_emf`]), and `chatctl serve` shows the
//! running totals in Prometheus text ([`prometheus`]).
//!
//! Hand-written rather than the `metrics` crate and its exporters: a fixed set of names and
//! two small text formats cost a few kilobytes, where the exporters would not fit the
//! 4 MiB zips (`adr/015-metrics.md`). Every name, and every dimension value, is a `&'static
//! str` of this crate: no identity, address or token can reach a metric.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use crate::ErrorKind;

/// CloudWatch's namespace for every metric.
pub const NAMESPACE: &str = "ContextChat";

macro_rules! counters {
    ($($variant:ident, $snake:literal, $help:literal;)*) => {
        /// A plain counter. Its name is the CloudWatch metric's; Prometheus shows it as
        /// `context_chat_<snake>_total`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter { $($variant,)* }

        impl Counter {
            pub const ALL: &[Counter] = &[$(Counter::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Counter::$variant => stringify!($variant),)* }
            }
            fn snake(self) -> &'static str {
                match self { $(Counter::$variant => $snake,)* }
            }
            fn help(self) -> &'static str {
                match self { $(Counter::$variant => $help,)* }
            }
        }
    };
}

counters! {
    Requests, "requests", "Requests (GraphQL operations, HTTP calls, queue records) handled.";
    ChatTokensIssued, "chat_tokens_issued", "Twilio chat access tokens issued.";
    VirgilTokensIssued, "virgil_tokens_issued", "Virgil E3Kit tokens issued.";
    DevTokensIssued, "dev_tokens_issued", "Development context tokens issued.";
    ConversationsCreated, "conversations_created", "Twilio conversations made by provisioning.";
    ParticipantsJoined, "participants_joined", "Users added to conversations by provisioning.";
    ParticipantsLeft, "participants_left", "Users removed from conversations by provisioning.";
    TwilioRequests, "twilio_requests", "HTTP requests sent to Twilio (each attempt).";
    TwilioRetries, "twilio_retries", "Twilio requests sent again after a failure.";
    TwilioThrottled, "twilio_throttled", "Twilio answers with HTTP 429.";
    TwilioServerErrors, "twilio_server_errors", "Twilio answers with HTTP 5xx, or none.";
    SmsStopped, "sms_stopped", "Text-message subscriptions ended because the number replied STOP.";
    SmsRefused, "sms_refused", "Text messages Twilio refused for good (a number it cannot send to).";
    PhoneCodesSent, "phone_codes_sent", "Phone verification codes sent (Verify).";
    SmsCodeBudgetReached, "sms_code_budget_reached", "Verification codes refused: the deployment's daily budget (sms/dailyCodes) was spent.";
    SmsTextBudgetReached, "sms_text_budget_reached", "Notification texts held: the deployment's daily budget (sms/dailyTexts) was spent.";
    SmsNumberBudgetReached, "sms_number_budget_reached", "Codes refused or texts held: one number's daily budget was spent.";
    SmsCountryRefused, "sms_country_refused", "Codes or texts refused: the number is outside sms/allowedCountries.";
    PhonesVerified, "phones_verified", "Phone numbers verified by their code.";
    NotifierRecordsFailed, "notifier_records_failed", "Notifier queue records handed back for redelivery.";
    RateLimited, "rate_limited", "Requests refused by a rate limit.";
    Revocations, "revocations", "Identities and tokens revoked.";
    Sweeps, "sweeps", "Delayed sweeps run: memberships made what the platform last said.";
    SweepsUnscheduled, "sweeps_unscheduled", "Revocations and syncs whose delayed sweep could not be queued.";
    AccessLogFailures, "access_log_failures", "Membership changes that could not be written to the access log.";
    EventsQueued, "events_queued", "Events to the platform queued.";
    EventsNotQueued, "events_not_queued", "Events to the platform that could not be queued (lost).";
    EventsDelivered, "events_delivered", "Events the platform took (HTTP 2xx).";
    EventsFailedAttempts, "events_failed_attempts", "Attempts to send an event that the platform did not take.";
    EventsDeadLettered, "events_dead_lettered", "Events dead-lettered: the platform did not take them within a day.";
}

/// A counter kept per `errorType`: CloudWatch gets the `ErrorType` dimension, Prometheus the
/// `error_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ErrorCounter {
    /// Every error answer, whatever the operation.
    Errors,
    /// Context tokens refused.
    TokensRefused,
    /// Twilio webhook calls refused.
    WebhooksRefused,
}

impl ErrorCounter {
    pub const ALL: &[ErrorCounter] = &[
        ErrorCounter::Errors,
        ErrorCounter::TokensRefused,
        ErrorCounter::WebhooksRefused,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ErrorCounter::Errors => "Errors",
            ErrorCounter::TokensRefused => "TokensRefused",
            ErrorCounter::WebhooksRefused => "WebhooksRefused",
        }
    }
    fn snake(self) -> &'static str {
        match self {
            ErrorCounter::Errors => "errors",
            ErrorCounter::TokensRefused => "tokens_refused",
            ErrorCounter::WebhooksRefused => "webhooks_refused",
        }
    }
    fn help(self) -> &'static str {
        match self {
            ErrorCounter::Errors => "Error answers, by errorType.",
            ErrorCounter::TokensRefused => "Context tokens refused, by errorType.",
            ErrorCounter::WebhooksRefused => "Twilio webhook calls refused, by errorType.",
        }
    }
}

/// Which limit refused a request: `RateLimited` is also counted per `Limit` (CloudWatch's
/// `Limit` dimension, Prometheus's `limit` label), so that one metric says which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Limit {
    /// Tokens one identity (or client address) may mint a minute (`chat/tokensPerMinute`).
    Mints,
    /// Confirmation emails one identity causes, and addresses waiting.
    EmailCodes,
    /// Verification codes one identity asks for, and numbers waiting.
    PhoneCodes,
    /// Codes one identity checks against a number's pending code.
    PhoneChecks,
    /// Verify's own: checks of one code, sends to one number.
    Verify,
    /// The deployment's daily SMS budgets, and a number's daily share.
    SmsBudget,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::Mints,
        Limit::EmailCodes,
        Limit::PhoneCodes,
        Limit::PhoneChecks,
        Limit::Verify,
        Limit::SmsBudget,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Mints => "mints",
            Limit::EmailCodes => "email_codes",
            Limit::PhoneCodes => "phone_codes",
            Limit::PhoneChecks => "phone_checks",
            Limit::Verify => "verify",
            Limit::SmsBudget => "sms_budget",
        }
    }
}

/// What became of one notification on one channel: counted per channel (CloudWatch's
/// `Channel` dimension, Prometheus's `channel` label), so that a new channel needs no new
/// metric, and the dashboard graphs every channel it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Outcome {
    Sent,
    /// Folded into a pending digest.
    Folded,
    SkippedOnline,
    /// The address is not confirmed (for texts: the number is not verified).
    SkippedUnconfirmed,
    /// The subscriber had read the message.
    SkippedRead,
    /// The subscriber is no longer a participant: the subscription ended.
    SkippedNotMember,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Sent,
        Outcome::Folded,
        Outcome::SkippedOnline,
        Outcome::SkippedUnconfirmed,
        Outcome::SkippedRead,
        Outcome::SkippedNotMember,
    ];

    /// The CloudWatch metric's name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Sent => "NotificationsSent",
            Outcome::Folded => "NotificationsFolded",
            Outcome::SkippedOnline => "NotificationsSkippedOnline",
            Outcome::SkippedUnconfirmed => "NotificationsSkippedUnconfirmed",
            Outcome::SkippedRead => "NotificationsSkippedRead",
            Outcome::SkippedNotMember => "NotificationsSkippedNotMember",
        }
    }

    /// Prometheus's `outcome` label.
    fn label(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Folded => "folded",
            Outcome::SkippedOnline => "skipped_online",
            Outcome::SkippedUnconfirmed => "skipped_unconfirmed",
            Outcome::SkippedRead => "skipped_read",
            Outcome::SkippedNotMember => "skipped_not_member",
        }
    }
}

const OUTCOMES: usize = Outcome::ALL.len();
/// Notifications by channel name (a `&'static str` of this crate) and [`Outcome`].
type ByChannel = Vec<(&'static str, [u64; OUTCOMES])>;

/// Upper bounds (milliseconds) of the Twilio latency histogram's buckets.
const LATENCY_BOUNDS_MS: [u64; 10] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
/// At most this many latencies per EMF line (CloudWatch takes 100 values per metric).
const MAX_LATENCY_VALUES: usize = 100;
const KINDS: usize = ErrorKind::ALL.len();
const COUNTERS: usize = Counter::ALL.len();
const ERROR_COUNTERS: usize = ErrorCounter::ALL.len();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZEROS: [AtomicU64; KINDS] = [ZERO; KINDS];
static COUNTS: [AtomicU64; COUNTERS] = [ZERO; COUNTERS];
static ERRORS: [[AtomicU64; KINDS]; ERROR_COUNTERS] = [ZEROS; ERROR_COUNTERS];
static LIMITS: [AtomicU64; Limit::ALL.len()] = [ZERO; Limit::ALL.len()];
/// Few channels, counted a few times per queue message: a lock is cheap enough.
static NOTIFIED: Mutex<ByChannel> = Mutex::new(Vec::new());
static LATENCY_BUCKETS: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1] =
    [ZERO; LATENCY_BOUNDS_MS.len() + 1];
static LATENCY_SUM_MS: AtomicU64 = ZERO;
/// Latencies not yet written to an EMF line, so CloudWatch gets their percentiles.
static RECENT_LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// What the last EMF line had counted up to.
static FLUSHED: Mutex<Option<Snapshot>> = Mutex::new(None);

/// Counts one.
pub fn count(counter: Counter) {
    add(counter, 1);
}

/// Counts `n`.
pub fn add(counter: Counter, n: u64) {
    COUNTS[counter as usize].fetch_add(n, Relaxed);
}

/// Counts one error of `kind`.
pub fn error(counter: ErrorCounter, kind: ErrorKind) {
    ERRORS[counter as usize][kind as usize].fetch_add(1, Relaxed);
}

/// Counts one request refused by `limit` (and `RateLimited`).
pub fn limited(limit: Limit) {
    count(Counter::RateLimited);
    LIMITS[limit as usize].fetch_add(1, Relaxed);
}

/// Counts `n` notifications of `channel` that came to `outcome`.
pub fn notified(channel: &'static str, outcome: Outcome, n: u64) {
    CHANNEL_LINES.get_or_init(|| channel_lines);
    if n == 0 {
        return;
    }
    let mut counts = NOTIFIED.lock().unwrap_or_else(|p| p.into_inner());
    match counts.iter_mut().find(|(c, _)| *c == channel) {
        Some((_, row)) => row[outcome as usize] += n,
        None => {
            let mut row = [0; OUTCOMES];
            row[outcome as usize] = n;
            counts.push((channel, row));
        }
    }
}

/// Records how long one Twilio request took.
pub fn twilio_latency(elapsed: std::time::Duration) {
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let bucket = LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len());
    LATENCY_BUCKETS[bucket].fetch_add(1, Relaxed);
    LATENCY_SUM_MS.fetch_add(ms, Relaxed);
    if let Ok(mut recent) = RECENT_LATENCIES.lock()
        && recent.len() < MAX_LATENCY_VALUES
    {
        recent.push(ms);
    }
}

/// The running totals at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    counts: Vec<u64>,
    errors: Vec<[u64; KINDS]>,
    limits: Vec<u64>,
    notified: ByChannel,
    latency_buckets: Vec<u64>,
    latency_sum_ms: u64,
}

impl Snapshot {
    /// The totals now.
    pub fn now() -> Self {
        Self {
            counts: COUNTS.iter().map(|c| c.load(Relaxed)).collect(),
            errors: ERRORS
                .iter()
                .map(|row| std::array::from_fn(|k| row[k].load(Relaxed)))
                .collect(),
            limits: LIMITS.iter().map(|c| c.load(Relaxed)).collect(),
            notified: NOTIFIED.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            latency_buckets: LATENCY_BUCKETS.iter().map(|c| c.load(Relaxed)).collect(),
            latency_sum_ms: LATENCY_SUM_MS.load(Relaxed),
        }
    }

    /// One counter's total.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counts.get(counter as usize).copied().unwrap_or(0)
    }

    /// One error counter's total for `kind`.
    pub fn get_error(&self, counter: ErrorCounter, kind: ErrorKind) -> u64 {
        self.errors
            .get(counter as usize)
            .map_or(0, |row| row[kind as usize])
    }

    /// Requests refused by `limit`.
    pub fn get_limit(&self, limit: Limit) -> u64 {
        self.limits.get(limit as usize).copied().unwrap_or(0)
    }

    /// Notifications of `channel` that came to `outcome`.
    pub fn get_notified(&self, channel: &str, outcome: Outcome) -> u64 {
        self.notified
            .iter()
            .find(|(c, _)| *c == channel)
            .map_or(0, |(_, row)| row[outcome as usize])
    }

    /// Twilio requests timed.
    pub fn latency_count(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }

    fn since(&self, earlier: &Snapshot) -> Snapshot {
        let minus = |now: &[u64], then: &[u64]| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(then.get(i).copied().unwrap_or(0)))
                .collect()
        };
        Snapshot {
            counts: minus(&self.counts, &earlier.counts),
            errors: self
                .errors
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let then = earlier.errors.get(i).copied().unwrap_or([0; KINDS]);
                    std::array::from_fn(|k| row[k].saturating_sub(then[k]))
                })
                .collect(),
            limits: minus(&self.limits, &earlier.limits),
            notified: self
                .notified
                .iter()
                .map(|&(channel, row)| {
                    let then = |o: usize| {
                        earlier
                            .notified
                            .iter()
                            .find(|(c, _)| *c == channel)
                            .map_or(0, |(_, r)| r[o])
                    };
                    (
                        channel,
                        std::array::from_fn(|o| row[o].saturating_sub(then(o))),
                    )
                })
                .collect(),
            latency_buckets: minus(&self.latency_buckets, &earlier.latency_buckets),
            latency_sum_ms: self.latency_sum_ms.saturating_sub(earlier.latency_sum_ms),
        }
    }
}

/// The EMF lines for what moved since the last call (or the process's start): the first
/// carries every counter that moved and the errors of one `errorType`; an invocation that met
/// errors of several types (rare: one request has one answer) gets one more line per further
/// type. Always at least one line, with `Requests`, so that a quiet invocation counts too.
/// `function` is the `Function` dimension (the handler crate's name), `stack` the `Stack`
/// one (the stack's name), so that alarms can sum over one stack's functions.
pub fn take_emf(function: &'static str, stack: &str, timestamp_ms: u64) -> Vec<String> {
    let now = Snapshot::now();
    let delta = {
        let mut flushed = FLUSHED.lock().unwrap_or_else(|p| p.into_inner());
        let delta = now.since(flushed.as_ref().unwrap_or(&Snapshot::default()));
        *flushed = Some(now);
        delta
    };
    let latencies =
        std::mem::take(&mut *RECENT_LATENCIES.lock().unwrap_or_else(|p| p.into_inner()));
    emf_lines(function, stack, timestamp_ms, &delta, &latencies)
}

fn emf_lines(
    function: &'static str,
    stack: &str,
    timestamp_ms: u64,
    delta: &Snapshot,
    latencies: &[u64],
) -> Vec<String> {
    let mut names = Vec::new();
    let dimensions = || {
        let mut line = Map::new();
        line.insert("Stack".into(), json!(stack));
        line.insert("Function".into(), json!(function));
        line
    };
    let mut line = dimensions();
    for &counter in Counter::ALL {
        let n = delta.get(counter);
        if n > 0 || counter == Counter::Requests {
            names.push(json!({"Name": counter.name(), "Unit": "Count"}));
            line.insert(counter.name().into(), json!(n));
        }
    }
    if !latencies.is_empty() {
        names.push(json!({"Name": "TwilioLatency", "Unit": "Milliseconds"}));
        line.insert("TwilioLatency".into(), json!(latencies));
    }
    let mut directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [["Stack", "Function"], ["Stack"]],
        "Metrics": names,
    })];
    let mut lines = Vec::new();
    for kind in ErrorKind::ALL {
        let moved: Vec<_> = ErrorCounter::ALL
            .iter()
            .map(|&c| (c, delta.get_error(c, kind)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if moved.is_empty() {
            continue;
        }
        let (mut target, mut target_directives) = if lines.is_empty() {
            (std::mem::take(&mut line), std::mem::take(&mut directives))
        } else {
            (dimensions(), Vec::new())
        };
        target.insert("ErrorType".into(), json!(kind.as_str()));
        let mut names = Vec::new();
        for (counter, n) in moved {
            names.push(json!({"Name": counter.name(), "Unit": "Count"}));
            target.insert(counter.name().into(), json!(n));
        }
        target_directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["Stack", "Function", "ErrorType"], ["Stack", "ErrorType"]],
            "Metrics": names,
        }));
        lines.push(finish(target, target_directives, timestamp_ms));
    }
    // One more line per limit that refused (rare: one request meets one limit).
    for limit in Limit::ALL {
        let n = delta.get_limit(limit);
        if n == 0 {
            continue;
        }
        let counts = [(Counter::RateLimited.name(), n)];
        let by = ("Limit", limit.as_str());
        lines.push(dimension_line(dimensions(), by, &counts, timestamp_ms));
    }
    // One more line per channel that notified: written by a function `notified` set, so
    // that only the functions that notify link it.
    if let Some(channel_lines) = CHANNEL_LINES.get() {
        let base = dimensions();
        lines.extend(channel_lines(&delta.notified, &base, timestamp_ms));
    }
    if !line.is_empty() {
        lines.insert(0, finish(line, directives, timestamp_ms));
    }
    lines
}

/// One EMF line of `counts` by one more dimension, `by` (its name and value), summed over the
/// stack's functions.
fn dimension_line(
    mut line: Map<String, Value>,
    (dimension, value): (&'static str, &str),
    counts: &[(&'static str, u64)],
    timestamp_ms: u64,
) -> String {
    line.insert(dimension.into(), json!(value));
    let mut names = Vec::with_capacity(counts.len());
    for (name, n) in counts {
        names.push(json!({"Name": name, "Unit": "Count"}));
        line.insert((*name).into(), json!(n));
    }
    let directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [["Stack", dimension]],
        "Metrics": names,
    })];
    finish(line, directives, timestamp_ms)
}

/// The EMF lines of the notifications, one per channel that moved.
fn channel_lines(
    notified: &ByChannel,
    dimensions: &Map<String, Value>,
    timestamp_ms: u64,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (channel, row) in notified {
        let moved: Vec<_> = Outcome::ALL
            .into_iter()
            .filter(|o| row[*o as usize] > 0)
            .collect();
        if moved.is_empty() {
            continue;
        }
        let counts: Vec<_> = moved
            .into_iter()
            .map(|o| (o.name(), row[o as usize]))
            .collect();
        let by = ("Channel", *channel);
        lines.push(dimension_line(
            dimensions.clone(),
            by,
            &counts,
            timestamp_ms,
        ));
    }
    lines
}

type ChannelLines = fn(&ByChannel, &Map<String, Value>, u64) -> Vec<String>;
static CHANNEL_LINES: OnceLock<ChannelLines> = OnceLock::new();

fn finish(mut line: Map<String, Value>, directives: Vec<Value>, timestamp_ms: u64) -> String {
    line.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(line).to_string()
}

/// The running totals in Prometheus's text format (version 0.0.4).
pub fn prometheus() -> String {
    let now = Snapshot::now();
    let mut out = String::with_capacity(8 * 1024);
    for &counter in Counter::ALL {
        let name = counter.snake();
        let _ = writeln!(out, "# HELP context_chat_{name}_total {}", counter.help());
        let _ = writeln!(out, "# TYPE context_chat_{name}_total counter");
        let _ = writeln!(out, "context_chat_{name}_total {}", now.get(counter));
    }
    for &counter in ErrorCounter::ALL {
        let name = counter.snake();
        let _ = writeln!(out, "# HELP context_chat_{name}_total {}", counter.help());
        let _ = writeln!(out, "# TYPE context_chat_{name}_total counter");
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "context_chat_{name}_total{{error_type=\"{kind}\"}} {}",
                now.get_error(counter, kind)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP context_chat_limits_reached_total Requests refused by a limit, by which limit."
    );
    let _ = writeln!(out, "# TYPE context_chat_limits_reached_total counter");
    for limit in Limit::ALL {
        let _ = writeln!(
            out,
            "context_chat_limits_reached_total{{limit=\"{}\"}} {}",
            limit.as_str(),
            now.get_limit(limit)
        );
    }
    let _ = writeln!(
        out,
        "# HELP context_chat_notifications_total What became of each notification, by channel and outcome."
    );
    let _ = writeln!(out, "# TYPE context_chat_notifications_total counter");
    for (channel, row) in &now.notified {
        for outcome in Outcome::ALL {
            let _ = writeln!(
                out,
                "context_chat_notifications_total{{channel=\"{channel}\",outcome=\"{}\"}} {}",
                outcome.label(),
                row[outcome as usize]
            );
        }
    }
    let name = "context_chat_twilio_request_duration_seconds";
    let _ = writeln!(out, "# HELP {name} How long Twilio requests took.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, n) in now.latency_buckets.iter().enumerate() {
        cumulative += n;
        match LATENCY_BOUNDS_MS.get(i) {
            Some(ms) => {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{le=\"{}\"}} {cumulative}",
                    *ms as f64 / 1000.0
                );
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let _ = writeln!(out, "{name}_sum {}", now.latency_sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {cumulative}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    // Counters are process-wide: one test at a time (nextest gives each its own process;
    // `cargo test` does not).
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn an_invocation_writes_what_moved_during_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _ = take_emf("f", "s", 0);
        count(Counter::Requests);
        add(Counter::ParticipantsJoined, 3);
        twilio_latency(Duration::from_millis(42));
        error(ErrorCounter::TokensRefused, ErrorKind::AccessDenied);
        error(ErrorCounter::Errors, ErrorKind::AccessDenied);
        let lines = take_emf("create-chat-token", "chat", 1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let line = parse(&lines[0]);
        assert_eq!(line["Function"], "create-chat-token");
        assert_eq!(line["ErrorType"], "AccessDenied");
        assert_eq!(line["Requests"], 1);
        assert_eq!(line["ParticipantsJoined"], 3);
        assert_eq!(line["TokensRefused"], 1);
        assert_eq!(line["TwilioLatency"], json!([42]));
        assert!(line.get("ChatTokensIssued").is_none(), "only what moved");
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000u64);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(directives.iter().all(|d| d["Namespace"] == "ContextChat"));
        // Every metric a directive names is a number (or numbers) on the line.
        for d in directives {
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(line[name].is_number() || line[name].is_array(), "{name}");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(line[dim.as_str().unwrap()].is_string());
                }
            }
        }
        // The next invocation starts from zero.
        let next = parse(&take_emf("create-chat-token", "chat", 1)[0]);
        assert_eq!(next["Requests"], 0);
        assert!(next.get("ParticipantsJoined").is_none());
        assert!(next.get("ErrorType").is_none());
        assert!(next.get("TwilioLatency").is_none());
    }

    #[test]
    fn a_refusal_by_a_limit_is_counted_with_the_limit_that_refused() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _ = take_emf("f", "s", 0);
        limited(Limit::PhoneChecks);
        let lines = take_emf("verify-email", "chat", 1);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let total = parse(&lines[0]);
        assert_eq!(total["RateLimited"], 1);
        let by_limit = parse(&lines[1]);
        assert_eq!(by_limit["Limit"], "phone_checks");
        assert_eq!(by_limit["RateLimited"], 1);
        assert_eq!(
            by_limit["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "Limit"]])
        );
        assert!(
            prometheus().contains("context_chat_limits_reached_total{limit=\"phone_checks\"} ")
        );
    }

    #[test]
    fn notifications_are_counted_per_channel_on_a_line_of_their_own() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _ = take_emf("f", "s", 0);
        notified("email", Outcome::Sent, 2);
        notified("sms", Outcome::SkippedOnline, 1);
        notified("sms", Outcome::Sent, 0);
        let lines: Vec<Value> = take_emf("notify", "chat", 1)
            .iter()
            .map(|l| parse(l))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1]["Channel"], "email");
        assert_eq!(lines[1]["NotificationsSent"], 2);
        assert_eq!(lines[2]["Channel"], "sms");
        assert_eq!(lines[2]["NotificationsSkippedOnline"], 1);
        assert!(
            lines[2].get("NotificationsSent").is_none(),
            "only what moved"
        );
        assert_eq!(
            lines[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "Channel"]])
        );
        let next = take_emf("notify", "chat", 2);
        assert_eq!(next.len(), 1, "the next invocation starts from zero");
        let text = prometheus();
        assert!(text.contains(
            "context_chat_notifications_total{channel=\"sms\",outcome=\"skipped_online\"} "
        ));
    }

    #[test]
    fn errors_of_two_types_take_two_lines() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _ = take_emf("f", "s", 0);
        error(ErrorCounter::Errors, ErrorKind::BadRequest);
        error(ErrorCounter::Errors, ErrorKind::InternalError);
        let lines: Vec<Value> = take_emf("notify", "chat", 5)
            .iter()
            .map(|l| parse(l))
            .collect();
        assert_eq!(lines.len(), 2);
        let types: Vec<_> = lines.iter().map(|l| l["ErrorType"].clone()).collect();
        assert_eq!(types, [json!("BadRequest"), json!("InternalError")]);
        assert!(
            lines
                .iter()
                .all(|l| l["Errors"] == 1 && l["Function"] == "notify")
        );
        assert!(lines[1].get("Requests").is_none(), "counted once");
    }

    #[test]
    fn prometheus_shows_totals_labels_and_a_histogram() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let before = Snapshot::now();
        count(Counter::ChatTokensIssued);
        count(Counter::ChatTokensIssued);
        error(ErrorCounter::Errors, ErrorKind::TooManyRequests);
        twilio_latency(Duration::from_millis(7));
        twilio_latency(Duration::from_secs(60));
        let text = prometheus();
        let has = |line: String| assert!(text.contains(&format!("\n{line}\n")), "{line}");
        let chat = before.get(Counter::ChatTokensIssued) + 2;
        has(format!("context_chat_chat_tokens_issued_total {chat}"));
        let limited = before.get_error(ErrorCounter::Errors, ErrorKind::TooManyRequests) + 1;
        has(format!(
            "context_chat_errors_total{{error_type=\"TooManyRequests\"}} {limited}"
        ));
        let timed = before.latency_count() + 2;
        let h = "context_chat_twilio_request_duration_seconds";
        has(format!("{h}_bucket{{le=\"+Inf\"}} {timed}"));
        has(format!("{h}_count {timed}"));
        let bucket = |s: &str, le: &str| -> u64 {
            let prefix = format!("{h}_bucket{{le=\"{le}\"}} ");
            s.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap()
                .parse()
                .unwrap()
        };
        let text_before = {
            // The same text for `before`: buckets are cumulative, 7 ms falls in le=0.01.
            let below_5 = before.latency_buckets[0];
            let below_10 = below_5 + before.latency_buckets[1];
            (below_5, below_10)
        };
        assert_eq!(bucket(&text, "0.005"), text_before.0);
        assert_eq!(bucket(&text, "0.01"), text_before.1 + 1);
        assert_eq!(
            bucket(&text, "5"),
            before.latency_count() - before.latency_buckets[10] + 1
        );
        assert!(text.contains(&format!("{h}_sum ")));
        // Every sample line is `name{labels} number`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
