//! Keeps e-mail addresses out of log lines: vendor error bodies often quote them.

/// Replaces every e-mail address in `text` with `***@***`.
pub fn emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match email_span(word) {
            Some((start, end)) => {
                out.push_str(&word[..start]);
                out.push_str("***@***");
                out.push_str(&word[end..]);
            }
            None => out.push_str(word),
        }
    }
    out
}

/// The byte range of an address inside one space-free word, if any.
fn email_span(word: &str) -> Option<(usize, usize)> {
    let at = word.find('@')?;
    let is_part = |c: char| c.is_alphanumeric() || "._%+-".contains(c);
    let start = word[..at].rfind(|c: char| !is_part(c)).map_or(0, |i| i + 1);
    let end = word[at + 1..]
        .find(|c: char| !is_part(c))
        .map_or(word.len(), |i| at + 1 + i);
    let domain = word[at + 1..end].trim_end_matches('.');
    (start < at && domain.contains('.')).then_some((start, at + 1 + domain.len()))
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
        ];
        for (input, expected) in cases {
            assert_eq!(super::emails(input), expected);
        }
    }
}
