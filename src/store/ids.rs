//! Short ids for tracked links (`?i=`). Anyone can try ids against `/identify`, so an id must
//! not be guessable: generated ids carry 65 random bits; ids an operator brings are measured and
//! warned about below [`MIN_BITS`].

/// Below this many bits an id can be found by trying every value (2^40 is about a trillion).
pub const MIN_BITS: f64 = 40.0;

/// Crockford's base32 alphabet, lower case: no i, l, o or u to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new id: 13 base32 characters from 65 random bits (a cryptographic generator).
pub fn generate() -> String {
    let mut bits: u128 = rand::random::<u128>();
    (0..13)
        .map(|_| {
            let c = ALPHABET[(bits & 31) as usize] as char;
            bits >>= 5;
            c
        })
        .collect()
}

/// How many bits of entropy `id` can carry at most, judged by the characters it uses: digits
/// only 3.3 a character, hex 4, one case of letters and digits 5.2, both cases 6.
pub fn entropy_bits(id: &str) -> f64 {
    let has = |f: fn(&char) -> bool| id.chars().any(|c| f(&c));
    let hex_only = id.chars().all(|c| c.is_ascii_hexdigit());
    let symbols = has(|c| "_.:-".contains(*c));
    let alphabet: f64 = if id.chars().all(|c| c.is_ascii_digit()) {
        10.0
    } else if hex_only && !(has(char::is_ascii_lowercase) && has(char::is_ascii_uppercase)) {
        16.0
    } else {
        let cases = [has(char::is_ascii_lowercase), has(char::is_ascii_uppercase)];
        let letters = 26.0 * cases.iter().filter(|c| **c).count() as f64;
        10.0 + letters + if symbols { 4.0 } else { 0.0 }
    };
    id.chars().count() as f64 * alphabet.log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_long_random_and_link_safe() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 13);
            assert!(crate::lead::is_id(id), "{id}");
            // Judged by its characters, even an unlucky all-digit draw clears the bar.
            assert!(entropy_bits(id) >= MIN_BITS, "{id}");
        }
    }

    #[test]
    fn entropy_by_alphabet_and_length() {
        let cases = [
            ("ab3f9", 20.0),         // five hex digits: the examples' ids
            ("12345678", 26.6),      // eight digits
            ("k3x9q2m7", 41.4),      // eight of a-z0-9
            ("Jane-Doe", 48.4),      // mixed case with a symbol
            ("0123456789xyz", 67.2), // a generated one
        ];
        for (id, bits) in cases {
            let got = entropy_bits(id);
            assert!((got - bits).abs() < 0.1, "{id}: {got}");
        }
        assert!(entropy_bits("ab3f9") < MIN_BITS);
        assert!(entropy_bits(&generate()) >= MIN_BITS);
    }
}
