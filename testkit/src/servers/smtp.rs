//! aiosmtpd, a real SMTP server, driven by `smtp_server.py` (its docstring
//! lists the options: STARTTLS, implicit TLS, AUTH, temporary failures,
//! per-recipient rejections, scripted answers).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::{ServerError, TempDir};

/// The driver script, written into each server's scratch directory so the
/// kit works wherever it is built from.
const SCRIPT: &str = include_str!("smtp_server.py");

fn python_ok(args: &[&str]) -> bool {
    Command::new("python3")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pip_install(extra: &[&str]) -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(extra)
        .arg("aiosmtpd")
        .output()
        .map_err(|e| format!("cannot run python3 (needed for the SMTP server): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Makes `import aiosmtpd` work, installing it from PyPI with pip if needed
/// (and saying so on stderr). Checked once per process.
pub fn ensure_aiosmtpd() -> Result<(), ServerError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if python_ok(&["-c", "import aiosmtpd"]) {
            return Ok(());
        }
        eprintln!("aiosmtpd (a Python SMTP server) is not installed: python3 -m pip install aiosmtpd …");
        let first = match pip_install(&[]) {
            Ok(()) => {
                eprintln!("aiosmtpd installed");
                return Ok(());
            }
            Err(e) => e,
        };
        // Debian-style Pythons refuse pip outside a virtualenv (PEP 668):
        // install for this user only, which touches no system package.
        if first.contains("externally-managed-environment") {
            eprintln!("this Python is externally managed: retrying with --user --break-system-packages …");
            if pip_install(&["--user", "--break-system-packages"]).is_ok() {
                eprintln!("aiosmtpd installed (user site)");
                return Ok(());
            }
        }
        if !python_ok(&["-m", "pip", "--version"]) {
            return Err("python3 has no pip: install it (e.g. apt-get install python3-pip) or run `python3 -m pip install aiosmtpd` yourself".into());
        }
        Err(format!("pip install aiosmtpd failed:\n{first}"))
    })
    .clone()
    .map_err(ServerError::Setup)
}

/// One message as the SMTP server received and parsed it.
#[derive(Debug, Clone)]
pub struct Received(pub serde_json::Value);

impl Received {
    /// The raw message, headers and body.
    pub fn data(&self) -> &str {
        self.0["data"].as_str().unwrap()
    }

    /// The raw header block (up to the first empty line).
    pub fn raw_headers(&self) -> &str {
        let data = self.data();
        let end = data.find("\r\n\r\n").or_else(|| data.find("\n\n")).unwrap();
        &data[..end]
    }

    /// Every decoded value of header `name` (case-insensitive).
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|h| h[1].as_str().unwrap().to_owned())
            .collect()
    }

    /// The decoded value of header `name`; panics unless it occurs exactly once.
    pub fn header(&self, name: &str) -> String {
        let all = self.headers(name);
        assert_eq!(all.len(), 1, "header {name}: {all:?}");
        all[0].clone()
    }

    /// The envelope recipients (`RCPT TO`).
    pub fn rcpt_tos(&self) -> Vec<String> {
        self.0["rcpt_tos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The decoded content of the leaf part of MIME type `ty`.
    pub fn part(&self, ty: &str) -> String {
        self.0["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty} part in {}", self.0["parts"]))["content"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The client's source port.
    pub fn peer_port(&self) -> u64 {
        self.0["peer"][1].as_u64().unwrap()
    }

    /// Whether the message came over TLS (STARTTLS or implicit).
    pub fn tls(&self) -> bool {
        self.0["tls"].as_bool().unwrap()
    }

    /// The user that authenticated, if any.
    pub fn auth_user(&self) -> Option<String> {
        self.0["auth_user"].as_str().map(str::to_owned)
    }

    /// Whether the server answered the message with 250.
    pub fn accepted(&self) -> bool {
        self.0["accepted"].as_bool().unwrap()
    }
}

/// aiosmtpd on 127.0.0.1, on a port it picked itself; killed on drop.
pub struct Aio {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Where the server says `READY` and acknowledges scripted answers.
    stdout: Mutex<BufReader<ChildStdout>>,
    /// The port it listens on.
    pub port: u16,
    out: PathBuf,
    _dir: TempDir,
}

impl Aio {
    /// Starts the server with `smtp_server.py` options, e.g.
    /// `["--auth", "user:password"]`; panics if it cannot (for tests).
    pub fn start(args: &[&str]) -> Aio {
        Self::try_start(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Aio::start`], returning the reason it could not start.
    pub fn try_start(args: &[&str]) -> Result<Aio, ServerError> {
        Self::spawn(args, true)
    }

    /// Starts the server without recording messages (for benchmarks).
    pub fn start_unrecorded(args: &[&str]) -> Aio {
        Self::spawn(args, false).unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn(args: &[&str], record: bool) -> Result<Aio, ServerError> {
        ensure_aiosmtpd()?;
        let fail = |detail: String| ServerError::Start {
            what: "aiosmtpd",
            detail,
        };
        let dir = TempDir::new();
        let out = dir.path("received.jsonl");
        let script = dir.path("smtp_server.py");
        std::fs::write(&script, SCRIPT).map_err(|e| fail(format!("writing the script: {e}")))?;
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        if record {
            cmd.arg("--out").arg(&out);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(format!("cannot run python3: {e}")))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let port = match line.strip_prefix("READY ").map(|p| p.trim().parse()) {
            Some(Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("expected \"READY <port>\", got {line:?}")));
            }
        };
        Ok(Aio {
            child,
            stdin,
            stdout: Mutex::new(stdout),
            port,
            out,
            _dir: dir,
        })
    }

    /// Scripts the answer to the final `.` of the next message not yet
    /// scripted: a reply such as `451 4.3.0 try later` (the message is
    /// recorded as not accepted), or `hang` (recorded, never answered).
    /// Returns once the server has it in effect. Needs a recording server.
    pub fn script_next(&self, answer: &str) {
        assert!(
            !answer.contains(['\r', '\n']),
            "one line per scripted answer: {answer:?}"
        );
        let mut stdin = self.stdin.as_ref().expect("the server's stdin is open");
        writeln!(stdin, "{answer}").unwrap();
        stdin.flush().unwrap();
        let mut ack = String::new();
        self.stdout
            .lock()
            .unwrap()
            .read_line(&mut ack)
            .expect("smtp_server.py acknowledges a scripted answer");
        assert_eq!(ack.trim(), "OK", "smtp_server.py did not take {answer:?}");
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        match std::fs::read_to_string(&self.out) {
            Ok(s) => s
                .lines()
                .map(|l| Received(serde_json::from_str(l).unwrap()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The only message received; panics unless there is exactly one.
    pub fn only(&self) -> Received {
        let all = self.received();
        assert_eq!(all.len(), 1, "expected one message, got {}", all.len());
        all.into_iter().next().unwrap()
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // Closing stdin ends the script; kill in case it is stuck.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
