//! What each Slack answer means: deliver, retry, fall back to plain text, or dead-letter with
//! what to fix.

use std::time::Duration;

use crate::{classify_status, Failure, Reason};

/// An answer that is not plain success.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Failed(Failure),
    /// Slack refused the blocks: send the `text` alone, once.
    InvalidBlocks,
}

/// Classifies an error code (incoming-webhook body or `chat.postMessage` `error`): rate limits
/// throttle; Slack's own failures retry; a refused token, a channel the app cannot post to, a
/// revoked webhook or an archived channel park the connector (every message would fail); a
/// message Slack cannot take dead-letters that message.
pub fn error_code(code: &str, status: u16, retry_after: Option<Duration>) -> Answer {
    let code = code.trim();
    let reason = match code {
        "invalid_blocks" | "invalid_blocks_format" => return Answer::InvalidBlocks,
        "ratelimited" | "rate_limited" | "service_unavailable" => Reason::Throttled,
        "request_timeout" => Reason::Timeout,
        "internal_error" | "fatal_error" | "rollup_error" if retry_after.is_some() => {
            Reason::Throttled
        }
        "internal_error" | "fatal_error" | "rollup_error" => Reason::ServerError,
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive"
        | "missing_scope" | "not_in_channel" | "action_prohibited" | "restricted_action" => {
            Reason::Auth
        }
        "channel_not_found" | "no_service" | "team_not_found" => Reason::NotFound,
        "is_archived" | "channel_is_archived" => Reason::Gone,
        "msg_too_long" | "invalid_payload" | "no_text" | "too_many_attachments" => {
            Reason::InvalidItem
        }
        // An unknown code: what its status says; on chat.postMessage (HTTP 200), this message.
        _ => match classify_status(status, retry_after, "").failure() {
            Some(f) => f.reason,
            None => Reason::InvalidItem,
        },
    };
    let detail = format!("{}: {}", label(code, status), hint(code));
    Answer::Failed(Failure::new(reason, detail).after(retry_after))
}

/// The Slack error code a failure was made from (see [`label`]).
fn code_of(f: &Failure) -> Option<&str> {
    f.detail.strip_prefix("slack ")?.split(' ').next()
}

/// `users.lookupByEmail` found nobody with the e-mail.
pub fn user_not_found(f: &Failure) -> bool {
    code_of(f) == Some("users_not_found")
}

/// A direct message Slack refused for that user alone (no such user, one the app may not
/// message, a deactivated account), not for the token or Slack's own state: the alert goes to
/// the fallback channel instead.
pub fn refused_dm(f: &Failure) -> bool {
    match f.reason {
        Reason::NotFound | Reason::Gone | Reason::InvalidItem => true,
        Reason::Auth => matches!(
            code_of(f),
            Some("not_in_channel" | "action_prohibited" | "restricted_action" | "cannot_dm_bot")
        ),
        _ => false,
    }
}

fn label(code: &str, status: u16) -> String {
    if code.is_empty() {
        format!("slack HTTP {status}")
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
        "ratelimited" | "rate_limited" => "Slack asked to slow down; retrying after Retry-After",
        "internal_error" | "fatal_error" | "rollup_error" | "service_unavailable" | "request_timeout" => {
            "a failure on Slack's side; retrying"
        }
        _ => "see https://api.slack.com/methods/chat.postMessage#errors",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, status: u16) -> Reason {
        match error_code(code, status, None) {
            Answer::Failed(f) => f.reason,
            Answer::InvalidBlocks => panic!("{code}: invalid blocks"),
        }
    }

    #[test]
    fn every_documented_code_is_classified() {
        let cases = [
            ("channel_not_found", 200, Reason::NotFound),
            ("channel_not_found", 404, Reason::NotFound),
            ("no_service", 404, Reason::NotFound),
            ("is_archived", 200, Reason::Gone),
            ("channel_is_archived", 410, Reason::Gone),
            ("invalid_auth", 200, Reason::Auth),
            ("token_revoked", 200, Reason::Auth),
            ("account_inactive", 200, Reason::Auth),
            ("missing_scope", 200, Reason::Auth),
            ("not_in_channel", 200, Reason::Auth),
            ("action_prohibited", 403, Reason::Auth),
            ("msg_too_long", 200, Reason::InvalidItem),
            ("invalid_payload", 400, Reason::InvalidItem),
            ("ratelimited", 429, Reason::Throttled),
            ("internal_error", 200, Reason::ServerError),
            ("rollup_error", 500, Reason::ServerError),
            ("", 503, Reason::Throttled),
            ("", 500, Reason::ServerError),
            ("something_new", 200, Reason::InvalidItem),
        ];
        for (code, status, expected) in cases {
            assert_eq!(reason(code, status), expected, "{code} {status}");
        }
        let Answer::Failed(f) = error_code("not_in_channel", 200, None) else {
            panic!("not_in_channel is a failure")
        };
        assert!(
            f.detail.starts_with("slack not_in_channel (HTTP 200)"),
            "{f}"
        );
        assert!(f.detail.contains("/invite"), "{f}");
        assert_eq!(
            error_code("ratelimited", 429, Some(Duration::from_secs(3))),
            Answer::Failed(
                Failure::new(
                    Reason::Throttled,
                    "slack ratelimited (HTTP 429): Slack asked to slow down; retrying after Retry-After"
                )
                .after(Some(Duration::from_secs(3)))
            )
        );
        assert_eq!(
            error_code("invalid_blocks", 200, None),
            Answer::InvalidBlocks
        );
    }
}
