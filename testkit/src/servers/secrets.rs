//! Fresh secrets for one run, so a demo or test never ships a fixed one.

use std::io::Read;

use base64::Engine;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes
}

/// A Standard Webhooks secret, `whsec_<base64 of 32 random bytes>`.
pub fn random_webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    )
}

/// 32 random hex digits, e.g. an SMTP AUTH password.
pub fn random_password() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
