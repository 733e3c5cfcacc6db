//! Standard Webhooks signing secrets (`whsec_<base64>`) and signatures.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// The prefix of every Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key accepted, in decoded bytes (the specification's lower bound).
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest key accepted, in decoded bytes (the specification's upper bound).
pub const MAX_SECRET_BYTES: usize = 64;

/// Standard base64, with or without padding (both are seen in the wild).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A Standard Webhooks signing secret: `whsec_` followed by the base64 of
/// 24 to 64 random bytes. The decoded key signs; it is zeroized on drop and
/// never printed (`Debug` shows `WebhookSecret(whsec_[redacted])`).
///
/// ```
/// use clarion_webhook::WebhookSecret;
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
/// assert_eq!(format!("{secret:?}"), "WebhookSecret(whsec_[redacted])");
/// // A known vector from the Standard Webhooks reference implementations:
/// assert_eq!(
///     secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// ```
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

/// Why a string is not a usable Standard Webhooks secret. The messages never
/// repeat the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The `whsec_` prefix is missing.
    #[error(
        "not a Standard Webhooks secret: it must start with \"whsec_\" followed by base64 \
         (generate one with `echo whsec_$(openssl rand -base64 32)`)"
    )]
    MissingPrefix,
    /// What follows the prefix is not base64.
    #[error(
        "not a Standard Webhooks secret: the part after \"whsec_\" is not valid base64 \
         (generate one with `echo whsec_$(openssl rand -base64 32)`)"
    )]
    NotBase64,
    /// The decoded key is too short or too long.
    #[error(
        "a Standard Webhooks secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes, \
         this one has {len} (generate one with `echo whsec_$(openssl rand -base64 32)`)"
    )]
    Length {
        /// The decoded length.
        len: usize,
    },
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_BASE64
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        Self::from_bytes(key)
    }

    /// A secret from raw key bytes (24 to 64 of them).
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, SecretError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length { len: key.len() });
        }
        Ok(WebhookSecret { key: key.into() })
    }

    /// The signature of one message: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether `signature` (the base64 part after `v1,`) is this secret's
    /// signature of the message; compared in constant time.
    pub(crate) fn matches(&self, id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
        match STANDARD.decode(signature) {
            Ok(tag) => self.mac(id, timestamp, body).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    pub(crate) fn same_key(&self, other: &WebhookSecret) -> bool {
        self.key.expose_secret() == other.key.expose_secret()
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookSecret::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_[redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_padding() {
        let raw = [7u8; 32];
        let padded = format!("whsec_{}", STANDARD.encode(raw));
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        let a = WebhookSecret::parse(&padded).unwrap();
        let b = WebhookSecret::parse(unpadded).unwrap();
        assert!(a.same_key(&b));
    }

    #[test]
    fn rejects_bad_secrets_without_echoing_them() {
        let cases = [
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                SecretError::MissingPrefix,
            ),
            ("whsec_not*base64!!", SecretError::NotBase64),
            ("whsec_c2hvcnQ=", SecretError::Length { len: 5 }),
        ];
        for (input, expected) in cases {
            let err = WebhookSecret::parse(input).unwrap_err();
            assert_eq!(err, expected);
            let message = err.to_string();
            assert!(!message.contains(input.trim_start_matches("whsec_")));
        }
    }

    #[test]
    fn signature_matches_the_reference_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let b64 = sig.strip_prefix("v1,").unwrap();
        assert!(secret.matches("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, b64));
        assert!(!secret.matches("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, b64));
    }
}
