//! Configuration checks and message composition (no server needed).

mod support;

use clarion_core::channel::Channel;
use clarion_core::event::*;
use clarion_core::registry;
use clarion_smtp::{SmtpChannel, SmtpError};
use support::*;

const BASE: &str = r#"
host = "127.0.0.1"
tls = "none"
allow_insecure = true
from = "KMS alerts <kms-alerts@example.com>"
to = ["oncall@example.com"]
"#;

fn build_err(toml: &str) -> String {
    let settings: serde_json::Value =
        serde_json::to_value(toml::from_str::<toml::Value>(toml).unwrap()).unwrap();
    let plugin = registry::find("smtp").expect("the smtp kind is registered");
    (plugin.build)("ops-email", settings)
        .unwrap_err()
        .to_string()
}

#[test]
fn registered_as_smtp_with_a_schema_and_a_valid_example() {
    let plugin = registry::find("smtp").unwrap();
    let schema = serde_json::to_value((plugin.config_schema)()).unwrap();
    for field in [
        "host", "port", "tls", "username", "password", "from", "to", "pool",
    ] {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field} missing from the schema"
        );
    }
    let settings =
        serde_json::to_value(toml::from_str::<toml::Value>(plugin.example).unwrap()).unwrap();
    (plugin.build)("ops-email", settings).unwrap();
}

#[test]
fn port_follows_the_tls_mode() {
    let with = |tls: &str| {
        let toml = format!(
            "host = \"mx.example.com\"\ntls = \"{tls}\"\nallow_insecure = true\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
        );
        channel(&toml).server().to_owned()
    };
    assert_eq!(with("starttls"), "mx.example.com:587");
    assert_eq!(with("tls"), "mx.example.com:465");
    assert_eq!(with("none"), "mx.example.com:25");
    let explicit = channel(&format!("{BASE}port = 2525\n"));
    assert_eq!(explicit.server(), "127.0.0.1:2525");
}

#[test]
fn the_port_may_be_a_string_of_digits_so_it_can_come_from_the_environment() {
    let from_env = channel(&format!("{BASE}port = \"2526\"\n"));
    assert_eq!(from_env.server(), "127.0.0.1:2526");
    assert_eq!(
        build_err(&format!("{BASE}port = \"25x\"\n")),
        "channels.ops-email.port: invalid port \"25x\": expected a number from 1 to 65535, or a string of its digits"
    );
    assert_eq!(
        build_err(&format!("{BASE}port = 70000\n")),
        "channels.ops-email.port: invalid port 70000: expected a number from 1 to 65535, or a string of its digits"
    );
}

#[test]
fn addresses_are_validated_with_their_path() {
    let err = build_err(&BASE.replace(
        r#"to = ["oncall@example.com"]"#,
        r#"to = ["oncall@example.com", "not an address"]"#,
    ));
    assert!(
        err.starts_with("channels.ops-email.to[1]: invalid e-mail address \"not an address\""),
        "{err}"
    );
    let err = build_err(&BASE.replace("KMS alerts <kms-alerts@example.com>", "kms-alerts@"));
    assert!(err.starts_with("channels.ops-email.from: "), "{err}");
    let err = build_err(&format!("{BASE}cc = [\"x@\"]\n"));
    assert!(err.starts_with("channels.ops-email.cc[0]: "), "{err}");
    let err = build_err(&format!("{BASE}bcc = [\"ok@example.com\", \"@bad\"]\n"));
    assert!(err.starts_with("channels.ops-email.bcc[1]: "), "{err}");
    let err = build_err(&format!("{BASE}reply_to = \"nope\"\n"));
    assert!(err.starts_with("channels.ops-email.reply_to: "), "{err}");
}

#[test]
fn tls_must_be_explicit_and_none_needs_allow_insecure() {
    let err = build_err(&BASE.replace("tls = \"none\"\n", ""));
    assert!(err.contains("tls"), "{err}");
    let err = build_err(&BASE.replace("allow_insecure = true\n", ""));
    assert!(err.starts_with("channels.ops-email.tls: "), "{err}");
    assert!(err.contains("allow_insecure = true"), "{err}");
    let err = build_err(&BASE.replace("\"none\"", "\"ssl\""));
    assert!(err.contains("tls"), "{err}");
}

#[test]
fn credentials_come_in_pairs_and_other_settings_are_checked() {
    let err = build_err(&format!("{BASE}username = \"clarion\"\n"));
    assert!(err.starts_with("channels.ops-email.password: "), "{err}");
    let err = build_err(&format!("{BASE}password = \"s3cret-pw\"\n"));
    assert!(err.starts_with("channels.ops-email.username: "), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    let err = build_err(&format!("{BASE}pool = {{ max_connections = 0 }}\n"));
    assert!(
        err.starts_with("channels.ops-email.pool.max_connections: "),
        "{err}"
    );
    let err = build_err(&format!("{BASE}timeout = \"0s\"\n"));
    assert!(err.starts_with("channels.ops-email.timeout: "), "{err}");
    let err = build_err(
        &format!("{BASE}ca_file = \"/nonexistent/ca.pem\"\n")
            .replace("tls = \"none\"", "tls = \"starttls\""),
    );
    assert!(
        err.starts_with("channels.ops-email.ca_file: cannot read"),
        "{err}"
    );
    let err = build_err(&format!("{BASE}bogus = 1\n"));
    assert!(err.contains("bogus"), "{err}");
    let err = build_err(
        "host = \"h\"\ntls = \"none\"\nallow_insecure = true\nfrom = \"a@example.com\"\n",
    );
    assert!(
        err.starts_with("channels.ops-email.to: no recipients"),
        "{err}"
    );
}

#[test]
fn templates_are_checked_when_the_config_loads() {
    let err = build_err(&format!(
        "{BASE}[templates.rotation_failure]\nsubject = \"{{{{ unclosed \"\n"
    ));
    assert!(
        err.starts_with(
            "channels.ops-email.templates.rotation_failure.subject: template does not compile"
        ),
        "{err}"
    );
    let err = build_err(&format!(
        "{BASE}[templates.rotation_success]\ntext = \"{{{{ subject.id|no_such_filter }}}}\"\n"
    ));
    assert!(
        err.starts_with("channels.ops-email.templates.rotation_success.text: "),
        "{err}"
    );
    let err = build_err(&format!(
        "{BASE}[templates.\"Not A Kind\"]\nsubject = \"x\"\n"
    ));
    assert!(err.contains("templates.Not A Kind"), "{err}");
}

#[test]
fn debug_output_never_shows_the_password() {
    let toml = format!("{BASE}username = \"clarion\"\npassword = \"hunter2-very-secret\"\n");
    let config = config(&toml);
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2-very-secret"), "{shown}");
    let channel = SmtpChannel::from_config(config).unwrap();
    let shown = format!("{channel:?} {channel:#?}");
    assert!(!shown.contains("hunter2-very-secret"), "{shown}");
    assert!(shown.contains("REDACTED"), "{shown}");
}

#[test]
fn composed_message_has_headers_parts_and_a_stable_message_id() {
    let channel = channel(&format!(
        "{BASE}cc = [\"team@example.com\"]\nbcc = [\"audit@example.com\"]\nreply_to = \"kms@example.com\"\n"
    ));
    let mut d = delivery(failure_event());
    let first = channel.compose(&d).unwrap();
    d.attempt = 2;
    let second = channel.compose(&d).unwrap();
    assert_eq!(
        first.message_id,
        format!("<{}@example.com>", d.idempotency_key())
    );
    assert_eq!(first.message_id, second.message_id);
    assert_eq!(
        first.recipients,
        [
            "oncall@example.com",
            "team@example.com",
            "audit@example.com"
        ]
    );
    let raw = String::from_utf8(first.raw.clone()).unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(!head.to_ascii_lowercase().contains("\nbcc:"), "{head}");
    assert!(
        head.contains("X-Clarion-Event-Kind: rotation_failure"),
        "{head}"
    );
    assert!(
        head.contains(&format!("X-Clarion-Notification-Id: {}", d.notification.id)),
        "{head}"
    );
    assert!(head.contains("Auto-Submitted: auto-generated"), "{head}");
    assert!(head.contains("Date: "), "{head}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert_eq!(
        first.subject,
        "[clarion] CRITICAL: rotation failed for symmetric key \"payments-dek\" (key-42)"
    );
    assert!(first.text.contains("HSM unreachable"), "{}", first.text);
    assert!(
        first.text.contains("2026-11-22 05:10 UTC"),
        "{}",
        first.text
    );
    assert!(
        first.text.contains("Owner:          alice"),
        "{}",
        first.text
    );
    assert!(first.html.contains("<h2"), "{}", first.html);
}

#[test]
fn event_values_cannot_inject_headers_or_markup() {
    let channel = channel(BASE);
    let event = KeyEvent::rotation_failure(
        Subject::new("key-1", ObjectType::Secret).named("x\r\nBcc: attacker@evil.example\r\n"),
        RotationFailure {
            error: "<script>alert(1)</script> & \"quotes\"".into(),
            attempt: 1,
            next_attempt: None,
        },
    );
    let m = channel.compose(&delivery(event)).unwrap();
    assert!(!m.subject.contains('\r') && !m.subject.contains('\n'));
    let raw = String::from_utf8(m.raw.clone()).unwrap();
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{head}"
    );
    assert_eq!(m.recipients, ["oncall@example.com"]);
    assert!(
        m.html.contains("&lt;script&gt;alert(1)&lt;")
            && m.html.contains("&amp; &quot;quotes&quot;"),
        "{}",
        m.html
    );
    assert!(!m.html.contains("<script>"));
    // The text part is not HTML: it keeps the value as it is.
    assert!(m.text.contains("<script>alert(1)</script>"), "{}", m.text);
}

#[test]
fn default_templates_read_well_for_every_kind() {
    let channel = channel(BASE);
    let s = channel.compose(&delivery(success_event())).unwrap();
    assert_eq!(
        s.subject,
        "[clarion] Rotated certificate \"api-gateway\" (cert-7)"
    );
    assert!(s.text.contains("New id:         v7"), "{}", s.text);
    assert!(
        s.text.contains("Next rotation:  2027-02-20 00:00 UTC"),
        "{}",
        s.text
    );
    let d = channel.compose(&delivery(deadline_event(5))).unwrap();
    assert_eq!(
        d.subject,
        "[clarion] WARNING: token tok-3 is due for rotation in 5 days"
    );
    assert!(
        d.text.contains("Deadline:       2026-12-01 00:00 UTC"),
        "{}",
        d.text
    );
    let today = channel.compose(&delivery(deadline_event(0))).unwrap();
    assert!(
        today.subject.ends_with("due for rotation today"),
        "{}",
        today.subject
    );
    let overdue = channel.compose(&delivery(deadline_event(-2))).unwrap();
    assert!(
        overdue.subject.ends_with("2 days ago (overdue)"),
        "{}",
        overdue.subject
    );
    let custom = KeyEvent::custom(
        EventKind::custom("key_compromised").unwrap(),
        Subject::new("key-9", ObjectType::KeyPair),
        Severity::Critical,
        serde_json::json!({ "reporter": "siem" }),
    );
    let c = channel.compose(&delivery(custom)).unwrap();
    assert_eq!(
        c.subject,
        "[clarion] CRITICAL: key compromised for key pair key-9"
    );
    assert!(c.text.contains("reporter:       siem"), "{}", c.text);
}

#[test]
fn overrides_replace_single_parts_and_default_covers_custom_kinds() {
    let channel = channel(&format!(
        "{BASE}[templates.rotation_failure]\nsubject = \"KMS: {{{{ display_name }}}} failed ({{{{ data.error }}}})\"\n\
         [templates.default]\nsubject = \"custom {{{{ kind }}}}\"\nhtml = \"<p>{{{{ data.note }}}}</p>\"\n"
    ));
    let m = channel.compose(&delivery(failure_event())).unwrap();
    assert_eq!(m.subject, "KMS: payments-dek failed (HSM unreachable)");
    // Parts that were not overridden keep their defaults.
    assert!(m.text.contains("Attempt:        3"), "{}", m.text);
    let custom = KeyEvent::custom(
        EventKind::custom("key_exported").unwrap(),
        Subject::new("k", ObjectType::Other),
        Severity::Info,
        serde_json::json!({ "note": "<b>bold</b>" }),
    );
    let c = channel.compose(&delivery(custom)).unwrap();
    assert_eq!(c.subject, "custom key_exported");
    assert_eq!(c.html, "<p>&lt;b&gt;bold&lt;&#x2f;b&gt;</p>");
}

#[test]
fn recipients_from_the_event() {
    let channel = channel(
        "host = \"127.0.0.1\"\ntls = \"none\"\nallow_insecure = true\nfrom = \"a@example.com\"\n\
         to_from_label = \"owner_email\"\nto_owner = true\n",
    );
    let event = failure_event().with_owner("alice@example.com").with_label(
        "owner_email",
        "dev@example.com, not-an-address, ops@example.com",
    );
    let m = channel.compose(&delivery(event)).unwrap();
    assert_eq!(
        m.recipients,
        ["dev@example.com", "ops@example.com", "alice@example.com"]
    );
    assert_eq!(m.ignored.len(), 1);
    assert!(m.ignored[0].contains("not-an-address"), "{:?}", m.ignored);
}

#[tokio::test]
async fn no_recipient_at_all_is_permanent_and_contacts_no_server() {
    // Pointed at a closed port: the error must be about recipients, not the
    // connection, so nothing was attempted.
    let (_socket, port) = closed_port();
    let channel = channel(&format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nallow_insecure = true\nfrom = \"a@example.com\"\n\
         to_from_label = \"owner_email\"\nto_owner = true\n",
        port
    ));
    let event = failure_event().with_owner("alice");
    let d = delivery(event);
    match channel.send(&d).await.unwrap_err() {
        SmtpError::NoRecipients { detail } => {
            assert!(detail.contains("owner_email"), "{detail}");
            assert!(detail.contains("\"alice\" is not an address"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let err = channel.deliver(&d).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.reason()
            .starts_with("no recipient for this notification"),
        "{err}"
    );
}
