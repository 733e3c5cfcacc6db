//! Real SMTP peers for the tests, all on 127.0.0.1, installed on demand:
//!
//! - [`Aio`] (clarion-testkit's): aiosmtpd (PyPI; `pip install aiosmtpd` if
//!   missing), with STARTTLS, implicit TLS, AUTH, temporary failures and
//!   per-recipient rejections; it records every message it receives.
//! - [`Sink`]: postfix's `smtp-sink` (Debian's postfix; `apt-get install`
//!   with debconf preseeded if missing) for injected 4xx / 5xx / 421.
//! - [`Pki`]: a CA and a server certificate made with rcgen.
//! - [`silent_server`]: accepts TCP connections and never greets.
//! - [`sink_dump_dir`], [`dumped_message_ids`]: what smtp-sink received,
//!   from its `-D` dump file.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use chrono::Utc;
use clarion_core::channel::Delivery;
use clarion_core::event::*;
use clarion_core::notification::Notification;
use clarion_smtp::{SmtpChannel, SmtpConfig};
// Each test binary uses a different subset.
#[allow(unused_imports)]
pub use clarion_testkit::servers::{Aio, Received, TempDir};

/// Installs the ring provider as the process default (once).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn smtp_sink_path() -> Option<PathBuf> {
    ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Makes `smtp-sink` available, installing Debian's postfix if needed.
pub fn ensure_smtp_sink() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = smtp_sink_path() {
            return p;
        }
        let script = "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections \
            && export DEBIAN_FRONTEND=noninteractive \
            && (apt-get install -y -q postfix || (apt-get update -q && apt-get install -y -q postfix))";
        let out = Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "installing postfix (for smtp-sink) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        smtp_sink_path().expect("postfix installed but smtp-sink not found")
    })
    .clone()
}

/// A CA and a server certificate signed by it, as PEM files.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "clarion test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "clarion test server");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = TempDir::new();
        let pki = Pki {
            ca: dir.path("ca.pem"),
            cert: dir.path("cert.pem"),
            key: dir.path("key.pem"),
            dir,
        };
        std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// postfix's smtp-sink on 127.0.0.1, with fault-injection flags such as
/// `["-r", "RCPT"]` (4xx), `["-f", "RCPT"]` (5xx), `["-Q", "RCPT"]` (421).
pub struct Sink {
    child: Child,
    pub port: u16,
}

impl Sink {
    pub fn start(flags: &[&str]) -> Sink {
        // The port is picked by binding port 0 and releasing it; if something
        // else takes it before smtp-sink binds, try another.
        let mut failures = String::new();
        for _ in 0..5 {
            match Self::try_start(flags, free_port()) {
                Ok(sink) => return sink,
                Err(e) => failures.push_str(&e),
            }
        }
        panic!("smtp-sink did not start:\n{failures}");
    }

    /// Starts smtp-sink on `port`, e.g. the port of a sink the test just
    /// dropped, so a client configured for that port reaches the new one.
    pub fn start_on(flags: &[&str], port: u16) -> Sink {
        let mut failures = String::new();
        for _ in 0..5 {
            match Self::try_start(flags, port) {
                Ok(sink) => return sink,
                Err(e) => failures.push_str(&e),
            }
        }
        panic!("smtp-sink did not start on port {port}:\n{failures}");
    }

    fn try_start(flags: &[&str], port: u16) -> Result<Sink, String> {
        let bin = ensure_smtp_sink();
        let mut cmd = Command::new(bin);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let mut child = cmd
            .arg("-v")
            .args(flags)
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run smtp-sink: {e}"))?;
        // Readiness: with -v, smtp-sink says "trying... [127.0.0.1]:port"
        // right before it binds and listens; after that line it either
        // listens or exits with an error.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let status = child.wait().unwrap();
                return Err(format!("smtp-sink exited ({status}):\n{seen}"));
            }
            seen.push_str(&line);
            if line.contains("trying...") {
                break;
            }
        }
        // Keep draining its verbose log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        });
        // Bounded by count, not by time: first spin, then back off.
        for attempt in 0..20_000u32 {
            if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(Sink { child, port });
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("smtp-sink exited ({status}):\n{seen}"));
            }
            if attempt < 1_000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("smtp-sink never listened on port {port}"))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory smtp-sink can write its `-D` dump files into (it runs as
/// `nobody` when the tests run as root).
pub fn sink_dump_dir() -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The `Message-ID` of every transaction in an smtp-sink `-D` dump file
/// (smtp-sink dumps refused transactions too), in order.
pub fn dumped_message_ids(dump: &Path) -> Vec<String> {
    std::fs::read_to_string(dump)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("Message-ID")
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// A TCP server that accepts connections and never says a word. Runs until
/// the runtime ends.
pub async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// A port that refuses connections: bound (so nothing else can take it)
/// but not listening. Keep the socket alive while the port is in use.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// Builds a channel from TOML.
pub fn channel(toml: &str) -> SmtpChannel {
    SmtpChannel::from_config(config(toml)).unwrap()
}

pub fn config(toml: &str) -> SmtpConfig {
    toml::from_str(toml).unwrap()
}

/// A delivery of `event`, attempt 1.
pub fn delivery(event: KeyEvent) -> Delivery {
    Delivery {
        id: uuid::Uuid::now_v7(),
        channel: "ops-email".into(),
        attempt: 1,
        notification: Notification::new(event, Utc::now()),
    }
}

pub fn failure_event() -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 3,
            next_attempt: Some("2026-11-22T05:10:00Z".parse().unwrap()),
        },
    )
    .with_owner("alice")
    .with_label("env", "prod")
    .at("2026-11-22T05:00:00Z".parse().unwrap())
}

pub fn success_event() -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new("cert-7", ObjectType::Certificate).named("api-gateway"),
        RotationSuccess {
            old_id: "v6".into(),
            new_id: "v7".into(),
            next_rotation: Some("2027-02-20T00:00:00Z".parse().unwrap()),
        },
    )
    .with_owner("bob")
}

pub fn deadline_event(days: i64) -> KeyEvent {
    KeyEvent::approaching_deadline(
        Subject::new("tok-3", ObjectType::Token),
        ApproachingDeadline {
            deadline: "2026-12-01T00:00:00Z".parse().unwrap(),
            days_remaining: days,
            threshold_days: 7,
            final_threshold: false,
        },
    )
}
