//! [`Redactor`]: keeps configured secrets out of text that came from the
//! network.

use std::fmt;

/// Pieces shorter than this are too common to be worth hiding (and a token
/// that short would be no secret).
const MIN_NEEDLE: usize = 8;

/// Replaces configured secrets (URL tokens, header values, API keys) with
/// `[redacted]`, e.g. in a peer's error page that echoes the request path.
/// [`HttpClient`](crate::HttpClient) applies it to every reason it builds.
///
/// ```
/// use clarion_http::Redactor;
/// let mut redactor = Redactor::default();
/// redactor.add_with_parts("Bearer sk_live_0123456789");
/// assert_eq!(redactor.redact("bad token sk_live_0123456789"), "bad token [redacted]");
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Hides `secret` (ignored when shorter than 8 bytes).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_NEEDLE && !self.needles.iter().any(|n| n == secret) {
            self.needles.push(secret.to_owned());
            // Longest first, so a whole value wins over its parts.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// Hides a value and its space-, `/`-, `&`-, `=`-, `?`-, `:`- and
    /// `@`-separated parts (a URL path, a `Bearer …` header).
    pub fn add_with_parts(&mut self, secret: &str) {
        self.add(secret);
        for part in secret.split([' ', '/', '&', '=', '?', ':', '@']) {
            self.add(part);
        }
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "[redacted]");
            }
        }
        text
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}
