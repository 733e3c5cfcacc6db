//! What can go wrong in an SMTP conversation, and how each failure is
//! classified for the dispatcher.

use std::fmt;
use std::time::Duration;

use clarion_core::channel::DeliveryError;

use crate::template::RenderError;

/// Where in the conversation a failure happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Opening the TCP connection.
    Connecting,
    /// The TLS handshake of `tls = "tls"`.
    TlsHandshake,
    /// Reading the server's greeting and sending EHLO.
    Greeting,
    /// `STARTTLS` and its handshake.
    StartTls,
    /// `AUTH`.
    Authenticating,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO` for one recipient.
    RcptTo(String),
    /// `DATA`.
    Data,
    /// Sending the message and waiting for the server to accept it.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Connecting => f.write_str("connecting"),
            Stage::TlsHandshake => f.write_str("in the TLS handshake"),
            Stage::Greeting => f.write_str("waiting for the greeting (220) and EHLO reply"),
            Stage::StartTls => f.write_str("in STARTTLS"),
            Stage::Authenticating => f.write_str("authenticating"),
            Stage::MailFrom => f.write_str("at MAIL FROM"),
            Stage::RcptTo(rcpt) => write!(f, "at RCPT TO:<{rcpt}>"),
            Stage::Data => f.write_str("at DATA"),
            Stage::Message => f.write_str("sending the message body"),
        }
    }
}

/// A failed delivery or check, with enough context to act on.
///
/// Messages never contain the password: the channel also scrubs every reason
/// it returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The TCP connection could not be opened (refused, unreachable, DNS).
    #[error("cannot connect to {server}: {detail}; is the relay up and the host/port right?")]
    Connect {
        /// `host:port`.
        server: String,
        /// The operating system's reason.
        detail: String,
    },
    /// The conversation did not finish within `timeout`.
    #[error("no answer from {server} within {after:?} ({stage}); the relay is slow or stuck")]
    Timeout {
        /// `host:port`.
        server: String,
        /// Where it stalled.
        stage: Stage,
        /// The configured `timeout`.
        after: Duration,
    },
    /// The connection broke or the server said something unparsable.
    #[error("connection to {server} failed {stage}: {detail}")]
    Network {
        /// `host:port`.
        server: String,
        /// Where it broke.
        stage: Stage,
        /// The I/O or protocol error.
        detail: String,
    },
    /// The TLS handshake failed (untrusted or mismatched certificate,
    /// protocol mismatch).
    #[error("TLS with {server} failed {stage}: {detail}; {hint}")]
    Tls {
        /// `host:port`.
        server: String,
        /// Handshake or STARTTLS.
        stage: Stage,
        /// rustls's reason.
        detail: String,
        /// What to change.
        hint: &'static str,
    },
    /// `tls = "starttls"` but the server does not offer STARTTLS.
    #[error(
        "{server} does not offer STARTTLS; use tls = \"tls\" if it expects TLS from the first byte \
         (usually port 465), or check that host/port point at a submission server"
    )]
    StartTlsUnavailable {
        /// `host:port`.
        server: String,
    },
    /// The server refused the credentials.
    #[error(
        "authentication failed for user {user:?} at {server}: {reply}; check username and password"
    )]
    AuthRejected {
        /// The configured user name.
        user: String,
        /// `host:port`.
        server: String,
        /// The server's reply (code and text).
        reply: String,
    },
    /// The server could not check the credentials right now (4xx).
    #[error("authentication for user {user:?} at {server} failed temporarily: {reply}")]
    AuthTemporary {
        /// The configured user name.
        user: String,
        /// `host:port`.
        server: String,
        /// The server's reply.
        reply: String,
    },
    /// Credentials are configured but the server offers no mechanism clarion speaks.
    #[error(
        "{server} offers no AUTH mechanism clarion supports (PLAIN, LOGIN){offered}; many servers \
         offer AUTH only over TLS, so check `tls`, or remove username/password if the relay needs none"
    )]
    AuthUnsupported {
        /// `host:port`.
        server: String,
        /// `; it offers: …`, or empty.
        offered: String,
    },
    /// The server answered a command with 4xx (`permanent = false`) or 5xx.
    #[error("{server} refused {stage}: {reply}")]
    Rejected {
        /// `host:port`.
        server: String,
        /// Which command.
        stage: Stage,
        /// The reply code, e.g. 550.
        code: u16,
        /// The reply code and text.
        reply: String,
        /// 5xx.
        permanent: bool,
    },
    /// Every recipient was refused with 5xx.
    #[error("{server} refused every recipient: {details}")]
    AllRecipientsRejected {
        /// `host:port`.
        server: String,
        /// `a@x (550 …), b@y (553 …)`.
        details: String,
    },
    /// Neither the configuration nor the event gave a recipient.
    #[error("no recipient for this notification: {detail}")]
    NoRecipients {
        /// Which sources were consulted.
        detail: String,
    },
    /// A non-ASCII address needs SMTPUTF8, which the server lacks.
    #[error("{server} does not support SMTPUTF8, which the non-ASCII address {address} needs")]
    Utf8Unsupported {
        /// `host:port`.
        server: String,
        /// The address.
        address: String,
    },
    /// A template failed to render.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The message could not be assembled.
    #[error("the message could not be built: {0}")]
    Build(String),
}

impl SmtpError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SmtpError::Connect { .. }
            | SmtpError::Timeout { .. }
            | SmtpError::Network { .. }
            | SmtpError::AuthTemporary { .. } => true,
            SmtpError::Rejected { permanent, .. } => !permanent,
            SmtpError::Tls { .. }
            | SmtpError::StartTlsUnavailable { .. }
            | SmtpError::AuthRejected { .. }
            | SmtpError::AuthUnsupported { .. }
            | SmtpError::AllRecipientsRejected { .. }
            | SmtpError::NoRecipients { .. }
            | SmtpError::Utf8Unsupported { .. }
            | SmtpError::Render(_)
            | SmtpError::Build(_) => false,
        }
    }

    /// The dispatcher's view, with `secret` scrubbed from the reason.
    pub(crate) fn into_delivery_error(self, secret: Option<&str>) -> DeliveryError {
        let reason = scrub(&self.to_string(), secret);
        if self.is_retryable() {
            DeliveryError::retryable(reason)
        } else {
            DeliveryError::permanent(reason)
        }
    }
}

/// Replaces every occurrence of `secret` with `[REDACTED]`.
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() && text.contains(s) => text.replace(s, "[REDACTED]"),
        _ => text.to_owned(),
    }
}

/// Turns a lettre error at `stage` into an [`SmtpError`].
pub(crate) fn classify(
    err: &lettre::transport::smtp::Error,
    server: &str,
    stage: &Stage,
) -> SmtpError {
    if let Some(code) = err.status() {
        let code_num: u16 = code.into();
        let text = std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let reply = one_line_reply(code_num, &text);
        return SmtpError::Rejected {
            server: server.to_owned(),
            stage: stage.clone(),
            code: code_num,
            reply,
            permanent: err.is_permanent(),
        };
    }
    if let Some(tls) = find_rustls_error(err) {
        return SmtpError::Tls {
            server: server.to_owned(),
            stage: stage.clone(),
            detail: tls.to_string(),
            hint: tls_hint(tls),
        };
    }
    if err.is_tls() {
        return SmtpError::Tls {
            server: server.to_owned(),
            stage: stage.clone(),
            detail: chain(err),
            hint: "check `tls`, `host` and `ca_file`",
        };
    }
    if err.is_timeout() {
        return SmtpError::Network {
            server: server.to_owned(),
            stage: stage.clone(),
            detail: "timed out".into(),
        };
    }
    SmtpError::Network {
        server: server.to_owned(),
        stage: stage.clone(),
        detail: chain(err),
    }
}

/// `550 5.1.1 <x@y>: user unknown`, on one line, capped.
pub(crate) fn one_line_reply(code: u16, text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    format!("{code} {}", text.trim())
}

/// The error and its sources, joined with `: `, skipping repeats.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let next = next_error(e);
        if let Some(n) = next {
            let s = n.to_string();
            if !out.contains(&s) {
                out.push_str(": ");
                out.push_str(&s);
            }
        }
        current = next;
    }
    out
}

/// The next error down the chain, looking inside `io::Error`s (whose
/// `source()` skips the error they wrap).
fn next_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    e.source()
}

/// The rustls error somewhere in the chain, if any.
pub(crate) fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = next_error(e);
    }
    None
}

pub(crate) fn tls_hint(err: &rustls::Error) -> &'static str {
    match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
        | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
            ..
        }) => "the certificate does not name `host`; set `host` to a name on the certificate",
        rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
        | rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired; renew it on the relay"
        }
        rustls::Error::InvalidCertificate(_) => {
            "the server's certificate is not trusted; for a private relay set `ca_file` to its CA certificate (PEM)"
        }
        _ => "check `tls` (starttls on 587, tls on 465) and that the relay speaks TLS 1.2 or 1.3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_secret() {
        assert_eq!(
            scrub("bad hunter2 here hunter2", Some("hunter2")),
            "bad [REDACTED] here [REDACTED]"
        );
        assert_eq!(scrub("nothing", Some("")), "nothing");
        assert_eq!(scrub("nothing", None), "nothing");
    }

    #[test]
    fn classification() {
        let server = "mx:25".to_string();
        let retryable = [
            SmtpError::Connect {
                server: server.clone(),
                detail: "refused".into(),
            },
            SmtpError::Timeout {
                server: server.clone(),
                stage: Stage::Greeting,
                after: Duration::from_secs(1),
            },
            SmtpError::Rejected {
                server: server.clone(),
                stage: Stage::Data,
                code: 451,
                reply: "451 later".into(),
                permanent: false,
            },
        ];
        assert!(retryable.iter().all(SmtpError::is_retryable));
        let permanent = [
            SmtpError::Rejected {
                server: server.clone(),
                stage: Stage::Data,
                code: 554,
                reply: "554 no".into(),
                permanent: true,
            },
            SmtpError::NoRecipients { detail: "x".into() },
            SmtpError::StartTlsUnavailable { server },
        ];
        assert!(permanent.iter().all(|e| !e.is_retryable()));
    }

    #[test]
    fn chain_looks_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        assert!(find_rustls_error(&io).is_some());
        assert!(chain(&io).contains("UnknownIssuer") || chain(&io).contains("unknown issuer"));
    }
}
