//! Slack's request signatures (api.slack.com/authentication/verifying-requests-from-slack):
//! `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")>` with
//! `X-Slack-Request-Timestamp`, which must be within five minutes of now (a captured request
//! cannot be sent again later). Compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP: &str = "x-slack-request-timestamp";
pub const SIGNATURE: &str = "x-slack-signature";

/// How far the timestamp may be from now, either way.
pub const TOLERANCE_S: i64 = 300;

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` Slack sends for `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a request's two headers against its raw body at `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err("X-Slack-Request-Timestamp and X-Slack-Signature are required");
    };
    let t: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "X-Slack-Request-Timestamp is not a number of seconds")?;
    if (now - t).abs() > TOLERANCE_S {
        return Err("X-Slack-Request-Timestamp is more than 5 minutes from now");
    }
    let given = signature
        .trim()
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("X-Slack-Signature must be v0=<hex>")?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&given)
        .map_err(|_| "X-Slack-Signature does not match the body")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slack_s_own_example_verifies() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(sign(secret, "1531420618", body), sig);
        assert_eq!(
            verify(secret, Some("1531420618"), Some(sig), body, 1531420618 + 60),
            Ok(())
        );
        assert!(verify(
            secret,
            Some("1531420618"),
            Some(sig),
            body,
            1531420618 + 301
        )
        .is_err());
        let mut altered = body.to_vec();
        altered[0] = b'T';
        assert!(verify(secret, Some("1531420618"), Some(sig), &altered, 1531420618).is_err());
        assert!(verify(
            b"another secret",
            Some("1531420618"),
            Some(sig),
            body,
            1531420618
        )
        .is_err());
        assert!(verify(secret, None, Some(sig), body, 1531420618).is_err());
        assert!(verify(
            secret,
            Some("1531420618"),
            Some("sha256=00"),
            body,
            1531420618
        )
        .is_err());
    }
}
