//! Twilio's wire formats: form-encoded request bodies, JSON answers, and the legacy error
//! body with its code.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Twilio's legacy error body (every Twilio API answers errors with it).
pub fn error_body(status: u16, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

/// Twilio's legacy error, as an answer.
pub fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = error_body(status, code, message);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn not_found(path: &str) -> Response {
    twilio_error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

pub(crate) fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn fields<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A page as Twilio's list resources take it: `PageSize` (50 unless given, at most `max`,
/// at least 1) and `PageToken`, which this emulator makes `PT<offset>`.
pub(crate) fn page(query: &[(String, String)], max: usize) -> (usize, usize) {
    let size = field(query, "PageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, max);
    let offset = field(query, "PageToken")
        .and_then(|v| v.strip_prefix("PT")?.parse().ok())
        .unwrap_or(0);
    (size, offset)
}

/// Now as Twilio writes dates: ISO 8601 in UTC, to the second.
pub fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    iso(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the civil calendar from days, Howard Hinnant's
/// algorithm).
pub fn iso(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc_civil_dates() {
        // Checked with Python's datetime.fromtimestamp(t, timezone.utc).
        for (unix, date) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_601_599, "2026-12-06T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ] {
            assert_eq!(super::iso(unix), date, "{unix}");
        }
    }
}
