use std::time::{Duration, SystemTime};

/// What happened to one delivery. The reason's first word is a short label fit for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the destination; CRMs report the record id.
    Delivered { record_id: Option<String> },
    /// Worth another attempt, no sooner than `after` when the destination said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will never succeed as it is: dead-letter it.
    Permanent { reason: String },
    /// The destination is gone (HTTP 410): dead-letter it and disable the connector.
    Gone { reason: String },
}

impl Outcome {
    /// A bounded label for metrics: `delivered`, `retry`, `permanent` or `gone`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Permanent { .. } => "permanent",
            Outcome::Gone { .. } => "gone",
        }
    }

    /// Why it was not delivered (empty for a delivery).
    pub fn reason(&self) -> String {
        match self {
            Outcome::Delivered { .. } => String::new(),
            Outcome::Retry { reason, .. }
            | Outcome::Permanent { reason }
            | Outcome::Gone { reason } => reason.clone(),
        }
    }

    pub fn retry(reason: impl Into<String>) -> Self {
        Outcome::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Outcome::Permanent {
            reason: reason.into(),
        }
    }
}

/// The one table that maps an HTTP status to an outcome, shared by every HTTP connector:
/// 2xx delivered; 3xx permanent (redirects are never followed); 410 gone; 408, 425, 429 and
/// 5xx retry (honouring `Retry-After`); any other 4xx permanent.
pub fn classify_status(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let detail = summarize_body(body);
    match status {
        200..=299 => Outcome::Delivered { record_id: None },
        300..=399 => Outcome::permanent(format!(
            "redirect: HTTP {status}; oie does not follow redirects, set the url to the final address"
        )),
        410 => Outcome::Gone {
            reason: format!("gone: HTTP 410 {detail}"),
        },
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("http_{status}: {detail}"),
            after: retry_after,
        },
        _ => Outcome::permanent(format!("http_{status}: {detail}")),
    }
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
            (301, "permanent"),
            (302, "permanent"),
            (400, "permanent"),
            (401, "permanent"),
            (404, "permanent"),
            (408, "retry"),
            (410, "gone"),
            (429, "retry"),
            (500, "retry"),
            (503, "retry"),
        ];
        for (status, label) in cases {
            assert_eq!(classify_status(status, None, "").label(), label, "{status}");
        }
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
        let Outcome::Permanent { reason } = classify_status(400, None, &body) else {
            panic!("400 is permanent");
        };
        assert!(reason.chars().count() < 320);
    }
}
