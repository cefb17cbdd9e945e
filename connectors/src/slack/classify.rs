//! What each Slack answer means: deliver, retry, fall back to plain text, or dead-letter with
//! what to fix.

use std::time::Duration;

use crate::Outcome;

/// An answer that is not plain success.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Outcome(Outcome),
    /// Slack refused the blocks: send the `text` alone, once.
    InvalidBlocks,
}

/// Classifies an error code (incoming-webhook body or `chat.postMessage` `error`).
pub fn error_code(code: &str, status: u16, retry_after: Option<Duration>) -> Answer {
    let code = code.trim();
    match code {
        "invalid_blocks" | "invalid_blocks_format" => Answer::InvalidBlocks,
        "ratelimited" | "rate_limited" => retry(code, status, retry_after),
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "rollup_error" => retry(code, status, retry_after),
        _ if status == 429 || status >= 500 => retry(code, status, retry_after),
        _ => Answer::Outcome(Outcome::permanent(format!(
            "{}: {}",
            label(code, status),
            hint(code)
        ))),
    }
}

fn retry(code: &str, status: u16, after: Option<Duration>) -> Answer {
    Answer::Outcome(Outcome::Retry {
        reason: label(code, status),
        after,
    })
}

fn label(code: &str, status: u16) -> String {
    if code.is_empty() {
        format!("slack http_{status}")
    } else {
        format!("slack {code} (HTTP {status})")
    }
}

/// What the operator should do about a permanent error.
fn hint(code: &str) -> &'static str {
    match code {
        "channel_not_found" => "the channel does not exist or the app cannot see it; check `channel` (an id like C0123ABCD) or create a new incoming webhook",
        "no_service" => "the incoming webhook was removed or revoked; create a new one and update SLACK_WEBHOOK_URL",
        "is_archived" | "channel_is_archived" => "the channel is archived; unarchive it or point the connector at another channel",
        "not_in_channel" => "the app is not in the channel; invite it with /invite @your-app, or add the chat:write.public scope",
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" => "the token is invalid or revoked; issue a new bot token and update SLACK_BOT_TOKEN",
        "missing_scope" => "the app lacks the chat:write scope; add it and reinstall the app",
        "action_prohibited" => "an admin restricted posting to this channel",
        "msg_too_long" => "the message is too long; shorten the template",
        "invalid_payload" => "Slack could not parse the message; check the template",
        _ => "see https://api.slack.com/methods/chat.postMessage#errors",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_is_classified() {
        let permanent = [
            "channel_not_found",
            "is_archived",
            "channel_is_archived",
            "no_service",
            "invalid_auth",
            "token_revoked",
            "missing_scope",
            "not_in_channel",
            "msg_too_long",
            "action_prohibited",
            "invalid_payload",
        ];
        for code in permanent {
            let Answer::Outcome(Outcome::Permanent { reason }) = error_code(code, 200, None) else {
                panic!("{code} should be permanent");
            };
            assert!(reason.starts_with(&format!("slack {code}")), "{reason}");
        }
        assert!(matches!(error_code("not_in_channel", 200, None),
            Answer::Outcome(Outcome::Permanent { reason }) if reason.contains("/invite")));
        for (code, status) in [
            ("ratelimited", 429),
            ("internal_error", 200),
            ("rollup_error", 500),
            ("", 503),
        ] {
            assert!(
                matches!(
                    error_code(code, status, None),
                    Answer::Outcome(Outcome::Retry { .. })
                ),
                "{code}"
            );
        }
        assert_eq!(
            error_code("ratelimited", 429, Some(Duration::from_secs(3))),
            Answer::Outcome(Outcome::Retry {
                reason: "slack ratelimited (HTTP 429)".into(),
                after: Some(Duration::from_secs(3))
            })
        );
        assert_eq!(
            error_code("invalid_blocks", 200, None),
            Answer::InvalidBlocks
        );
    }
}
