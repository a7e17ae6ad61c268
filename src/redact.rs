//! Request values (client ids, realms, `x-request-id`) as log fields: at
//! most [`SHOWN`] printable characters, and `<redacted>` instead when a
//! configured secret is among them (a client may send anything as its id).
//!
//! Only what can be shown is searched: the substrings that start in the
//! first [`SHOWN`] bytes, one set lookup per start and secret length. A field
//! costs the same whatever the value's length and however many clients are
//! configured (the lengths are few: Keycloak makes 32-character secrets). A
//! request must not decide how much CPU the filter burns (SECURITY.md, "A
//! request set the filter's CPU cost").
//!
//! (An Aho-Corasick automaton, from the `aho-corasick` crate, would read each
//! byte once, but made the module 56 to 92 KB larger, past its 384 KiB budget,
//! for fields that are only made when a line is written.)

use std::collections::HashSet;
use std::fmt;

/// How many bytes of a value a log line shows.
pub const SHOWN: usize = 64;

/// Finds configured secrets in what a log line would show.
#[derive(Clone, PartialEq, Eq)]
pub struct Redactor {
    /// The secrets, by length.
    by_length: Vec<(usize, HashSet<Box<[u8]>>)>,
    /// The bytes of a value that a secret any part of which is shown can
    /// reach: one starting in the first [`SHOWN`] ends before `SHOWN + longest`.
    window: usize,
}

impl Redactor {
    /// A redactor for these secrets (empty ones are ignored: a
    /// `private_key_jwt` entry has no client secret).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut by_length: Vec<(usize, HashSet<Box<[u8]>>)> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            let bytes: Box<[u8]> = secret.as_bytes().into();
            match by_length.iter_mut().find(|(len, _)| *len == bytes.len()) {
                Some((_, set)) => {
                    set.insert(bytes);
                }
                None => by_length.push((bytes.len(), HashSet::from([bytes]))),
            }
        }
        let longest = by_length.iter().map(|(len, _)| *len).max().unwrap_or(0);
        Redactor {
            by_length,
            window: SHOWN.saturating_add(longest),
        }
    }

    /// The prefix of a value worth keeping to log it later: everything
    /// [`Redactor::field`] reads of it.
    pub fn keep<'v>(&self, value: &'v [u8]) -> &'v [u8] {
        value.get(..self.window).unwrap_or(value)
    }

    /// The value as a log field: `-` when absent, `<redacted>` when a secret
    /// would be shown, else its first [`SHOWN`] bytes, printable (`...` when
    /// cut).
    pub fn field(&self, value: Option<&[u8]>) -> String {
        match value {
            None => "-".to_owned(),
            Some(value) if self.shows_secret(value) => "<redacted>".to_owned(),
            Some(value) => printable(value),
        }
    }

    /// Whether a secret starts in the part of `value` a field shows.
    fn shows_secret(&self, value: &[u8]) -> bool {
        let starts = value.len().min(SHOWN);
        self.by_length.iter().any(|(len, secrets)| {
            (0..starts).any(|at| {
                value
                    .get(at..)
                    .and_then(|rest| rest.get(..*len))
                    .is_some_and(|candidate| secrets.contains(candidate))
            })
        })
    }
}

/// Printable ASCII, other bytes as `?`; at most [`SHOWN`] of them.
fn printable(bytes: &[u8]) -> String {
    let mut out: String = bytes
        .iter()
        .take(SHOWN)
        .map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '?' })
        .collect();
    if bytes.len() > SHOWN {
        out.push_str("...");
    }
    out
}

/// Never the secrets.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lengths: Vec<usize> = self.by_length.iter().map(|(len, _)| *len).collect();
        f.debug_struct("Redactor")
            .field("secret_lengths", &lengths)
            .field("window", &self.window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-of-32-bytes-0123456789abc";

    #[test]
    fn fields_are_short_printable_and_never_a_secret() {
        let redactor = Redactor::new([SECRET, ""]);
        assert_eq!(redactor.field(None), "-");
        assert_eq!(redactor.field(Some(b"7f0c-11")), "7f0c-11");
        assert_eq!(redactor.field(Some(b"a b\n\xff")), "a?b??");
        assert_eq!(redactor.field(Some(&[b'x'; 70])), format!("{}...", "x".repeat(64)));
        assert_eq!(redactor.field(Some(SECRET.as_bytes())), "<redacted>");
        assert_eq!(redactor.field(Some(format!("id-{SECRET}").as_bytes())), "<redacted>");
    }

    #[test]
    fn a_secret_partly_shown_is_redacted() {
        let redactor = Redactor::new([SECRET]);
        for at in [0, 1, 40, 63] {
            let value = format!("{}{SECRET}{}", "x".repeat(at), "y".repeat(1000));
            assert_eq!(redactor.field(Some(value.as_bytes())), "<redacted>", "at {at}");
        }
    }

    /// What cannot be shown is not searched: the cost of a field is bounded
    /// by the window, not by the value (a 60 KB `x-request-id`).
    #[test]
    fn a_secret_after_what_is_shown_is_not_searched_for() {
        let redactor = Redactor::new([SECRET]);
        let value = format!("{}{SECRET}", "x".repeat(SHOWN + SECRET.len()));
        assert_eq!(redactor.field(Some(value.as_bytes())), format!("{}...", "x".repeat(64)));
        assert_eq!(redactor.keep(value.as_bytes()).len(), SHOWN + SECRET.len());
        assert_eq!(redactor.keep(b"short"), b"short");
    }

    #[test]
    fn one_search_finds_any_of_ten_thousand_secrets() {
        let secrets: Vec<String> = (0..10_000)
            .map(|i| format!("secret-{i:05}-{}", "s".repeat(20)))
            .collect();
        let redactor = Redactor::new(secrets.iter().map(String::as_str));
        for secret in [&secrets[0], &secrets[4_321], &secrets[9_999]] {
            assert_eq!(
                redactor.field(Some(format!("caller:{secret}").as_bytes())),
                "<redacted>"
            );
        }
        assert_eq!(redactor.field(Some(b"secret-10000")), "secret-10000");
    }

    #[test]
    fn without_secrets_nothing_is_redacted() {
        let redactor = Redactor::new(["", ""]);
        assert_eq!(redactor.field(Some(b"anything")), "anything");
        assert_eq!(redactor.keep(&[b'x'; 100]).len(), SHOWN);
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", Redactor::new([SECRET]));
        assert!(!shown.contains(SECRET) && !shown.contains("s3cr3t"), "{shown}");
    }
}
