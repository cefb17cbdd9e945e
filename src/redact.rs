//! Keeps e-mail addresses out of log lines: vendor error bodies often quote them. The log
//! writer passes every line through [`emails`], so no address reaches a log whatever logged it.

use std::io::Write;

/// Replaces every e-mail address in `text` with `***@***`.
pub fn emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, end)) = next_email(rest) {
        out.push_str(&rest[..start]);
        out.push_str("***@***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The byte range of the first address in `text`, if any: a local part and a dotted domain
/// around an `@`.
fn next_email(text: &str) -> Option<(usize, usize)> {
    let is_part = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let mut from = 0;
    while let Some(i) = text[from..].find('@') {
        let at = from + i;
        let start = text[..at].rfind(|c: char| !is_part(c)).map_or(0, |i| {
            // The character before the local part may be several bytes long.
            i + text[i..].chars().next().map_or(1, char::len_utf8)
        });
        let end = text[at + 1..]
            .find(|c: char| !is_part(c))
            .map_or(text.len(), |i| at + 1 + i);
        let domain = text[at + 1..end].trim_end_matches('.');
        if start < at && domain.contains('.') && !domain.starts_with('.') {
            return Some((start, at + 1 + domain.len()));
        }
        from = at + 1;
    }
    None
}

/// Standard error with every e-mail address in a line hidden: the log writer.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes a whole event at once, so an address is never split.
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(emails(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_hidden() {
        let cases = [
            (
                "Contact jane.doe+x@acme.example already exists",
                "Contact ***@*** already exists",
            ),
            ("email=\"bob@globex.com\".", "email=\"***@***\"."),
            ("no address here @ all", "no address here @ all"),
            ("user@localhost stays", "user@localhost stays"),
            (
                "to=a@b.example,c@d.example;e@f.example",
                "to=***@***,***@***;***@***",
            ),
            (
                "{\"emails\":[\"x@y.example\",\"z@w.example\"]}",
                "{\"emails\":[\"***@***\",\"***@***\"]}",
            ),
            ("«jane@acme.example»", "«***@***»"),
            (
                "a@@b.example @x.example y@.example",
                "a@@b.example @x.example y@.example",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(super::emails(input), expected, "{input}");
        }
    }
}
