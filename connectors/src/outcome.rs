use std::time::{Duration, SystemTime};

use crate::{Failure, Reason};

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the destination; CRMs report the record id.
    Delivered { record_id: Option<String> },
    /// Not delivered, and why; the reason says what happens next.
    Failed(Failure),
}

impl Outcome {
    pub fn failed(reason: Reason, detail: impl Into<String>) -> Outcome {
        Outcome::Failed(Failure::new(reason, detail))
    }

    /// A bounded label for metrics and logs: `delivered`, or the failure's reason.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Failed(f) => f.reason.as_str(),
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Delivered { .. } => None,
            Outcome::Failed(f) => Some(f),
        }
    }

    /// The id of the record a delivery made or found (CRMs), if any.
    pub fn record_id(&self) -> Option<&str> {
        match self {
            Outcome::Delivered { record_id } => record_id.as_deref(),
            Outcome::Failed(_) => None,
        }
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Outcome {
        Outcome::Failed(f)
    }
}

/// The one table that maps an HTTP status to an outcome, shared by every HTTP connector:
/// 2xx delivered; 3xx `redirect` (never followed); 401 and 403 `auth`; 404 `not_found`;
/// 410 `gone`; 408 `timeout`; 425, 429, 502, 503, 504 `throttled` (honouring `Retry-After`);
/// other 5xx `server_error`, or `throttled` when they carry `Retry-After`; any other 4xx
/// `invalid_item`.
pub fn classify_status(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let detail = format!("HTTP {status} {}", summarize_body(body))
        .trim_end()
        .to_string();
    let reason = match status {
        200..=299 => return Outcome::Delivered { record_id: None },
        300..=399 => {
            return Outcome::failed(
                Reason::Redirect,
                format!(
                    "{detail}; oie does not follow redirects, set the url to the final address"
                ),
            )
        }
        401 | 403 => Reason::Auth,
        404 => Reason::NotFound,
        410 => Reason::Gone,
        408 => Reason::Timeout,
        425 | 429 | 502..=504 => Reason::Throttled,
        500..=599 if retry_after.is_some() => Reason::Throttled,
        500..=599 => Reason::ServerError,
        _ => Reason::InvalidItem,
    };
    Outcome::Failed(Failure::new(reason, detail).after(retry_after))
}

/// Keeps error bodies short and on one line for logs and dead letters.
pub(crate) fn summarize_body(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate_parse(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn httpdate_parse(value: &str) -> Option<SystemTime> {
    // IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"), the form RFC 9110 requires senders to use.
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[2])? as u64 + 1;
    let year: u64 = parts[3].parse().ok()?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|p| p.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases = [
            (200, "delivered"),
            (204, "delivered"),
            (301, "redirect"),
            (302, "redirect"),
            (400, "invalid_item"),
            (401, "auth"),
            (403, "auth"),
            (404, "not_found"),
            (408, "timeout"),
            (410, "gone"),
            (422, "invalid_item"),
            (425, "throttled"),
            (429, "throttled"),
            (500, "server_error"),
            (501, "server_error"),
            (502, "throttled"),
            (503, "throttled"),
            (504, "throttled"),
        ];
        for (status, label) in cases {
            assert_eq!(classify_status(status, None, "").label(), label, "{status}");
        }
        // A server that says when to come back is throttling, whatever the status.
        let later = Some(Duration::from_secs(5));
        let Outcome::Failed(f) = classify_status(500, later, "maintenance") else {
            panic!("500 is a failure");
        };
        assert_eq!((f.reason, f.after), (Reason::Throttled, later));
        assert_eq!(f.detail, "HTTP 500 maintenance");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        assert!(future > Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn http_date_is_exact() {
        let t = httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 784_111_777);
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let Outcome::Failed(f) = classify_status(400, None, &body) else {
            panic!("400 is a failure");
        };
        assert!(f.detail.chars().count() < 320);
    }
}
