//! Signatures of server-side senders of `/track`, the same as the Worker's:
//! `X-OIE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`. The timestamp is
//! inside what is signed and must be within five minutes of now, so a captured request cannot
//! be sent again later.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "x-oie-signature";

/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE_S: i64 = 300;

fn mac(key: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a sender computes for `body` at `t` (unix seconds).
pub fn sign(key: &[u8], t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(mac(key, t, body).finalize().into_bytes())
    )
}

/// Checks `header` against `body` at `now` (unix seconds); the error says what to fix.
pub fn verify(key: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), String> {
    let header = header.trim();
    if header.starts_with("sha256=") {
        return Err(format!("{HEADER} uses the old `sha256=<hex>` form; sign \"<unix seconds>.<body>\" and send `t=<unix seconds>,v1=<hex>`"));
    }
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(format!(
            "{HEADER} must be `t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`"
        ));
    };
    if (now - t).abs() > TOLERANCE_S {
        return Err(format!("{HEADER} is more than {TOLERANCE_S} seconds from now (t={t}); sign each request as it is sent"));
    }
    mac(key, t, body)
        .verify_slice(&v1)
        .map_err(|_| format!("{HEADER} does not match the body"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_the_body_and_the_time() {
        let (key, body, now) = (b"k3y".as_slice(), br#"{"v":1}"#.as_slice(), 1_800_000_000);
        let header = sign(key, now, body);
        assert!(verify(key, &header, body, now).is_ok());
        assert!(verify(key, &header, body, now + TOLERANCE_S).is_ok());
        assert!(verify(key, &header, body, now + TOLERANCE_S + 1)
            .unwrap_err()
            .contains("more than 300 seconds"));
        assert!(verify(key, &header, br#"{"v":2}"#, now)
            .unwrap_err()
            .contains("does not match"));
        assert!(verify(b"other", &header, body, now).is_err());
        // A timestamp changed by the sender after signing no longer matches.
        let moved = header.replace(&format!("t={now}"), &format!("t={}", now + 1));
        assert!(verify(key, &moved, body, now)
            .unwrap_err()
            .contains("does not match"));
        assert!(verify(key, "sha256=00", body, now)
            .unwrap_err()
            .contains("old `sha256=<hex>` form"));
        assert!(verify(key, "v1=00", body, now)
            .unwrap_err()
            .contains("must be"));
    }

    /// The Worker's signing (worker/src/signing.ts) computes the same value: this vector is in
    /// its tests too.
    #[test]
    fn the_shared_vector() {
        assert_eq!(
            sign(
                b"test-signing-secret",
                1_800_000_000,
                br#"{"v":1,"events":[]}"#
            ),
            "t=1800000000,v1=ade6fd5c7ce129ad2cd6e4af6dc40632a8c2b215001432bd8b78542418f6555b"
        );
    }
}
