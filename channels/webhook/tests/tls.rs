//! HTTPS through rustls with the ring provider, against a real TLS receiver
//! whose certificate comes from a private CA made by the test.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use clarion_core::channel::Channel;
use clarion_webhook::{DEFAULT_TOLERANCE, WebhookChannel, WebhookConfig, WebhookSecret, verify};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_file: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and the CA in a PEM file.
fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "clarion test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let ca_file = std::env::temp_dir().join(format!(
        "clarion-webhook-{name}-{}-ca.pem",
        std::process::id()
    ));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_file,
        server: Arc::new(server),
    }
}

#[tokio::test]
async fn delivers_over_https_trusting_a_private_ca() {
    let pki = pki("trusted");
    let receiver = Receiver::start_tls(pki.server.clone()).await;
    let url = format!("https://{}/hooks/clarion", receiver.addr);
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(&url)
            .secret(SECRET_A)
            .tls_ca_file(&pki.ca_file),
    )
    .unwrap();
    let receipt = channel.deliver(&delivery(failure_event())).await.unwrap();
    assert_eq!(receipt.detail.as_deref(), Some("HTTP 200 OK"));
    let r = &receiver.requests()[0];
    let secret: WebhookSecret = SECRET_A.parse().unwrap();
    verify(&secret, &r.headers, &r.body, DEFAULT_TOLERANCE).unwrap();
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_retryable_connection_error() {
    let pki = pki("untrusted");
    let receiver = Receiver::start_tls(pki.server.clone()).await;
    let url = format!("https://{}/hooks/clarion", receiver.addr);
    let channel = WebhookChannel::from_config(WebhookConfig::new(&url).secret(SECRET_A)).unwrap();
    let err = channel
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.reason()
            .starts_with(&format!("cannot connect to https://{}", receiver.addr)),
        "{err}"
    );
    assert!(err.reason().to_lowercase().contains("certificate"), "{err}");
    assert!(receiver.requests().is_empty());
}

#[test]
fn a_bad_ca_file_is_a_config_error_on_its_field() {
    let missing = WebhookChannel::from_config(
        WebhookConfig::new("https://x.example/h")
            .secret(SECRET_A)
            .tls_ca_file("/nonexistent/ca.pem"),
    )
    .unwrap_err();
    assert_eq!(missing.field.as_deref(), Some("tls_ca_file"));
    assert!(missing.message.contains("/nonexistent/ca.pem"), "{missing}");

    let empty =
        std::env::temp_dir().join(format!("clarion-webhook-empty-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = WebhookChannel::from_config(
        WebhookConfig::new("https://x.example/h")
            .secret(SECRET_A)
            .tls_ca_file(&empty),
    )
    .unwrap_err();
    std::fs::remove_file(&empty).unwrap();
    assert_eq!(err.field.as_deref(), Some("tls_ca_file"));
    assert!(err.message.contains("no PEM certificate"), "{err}");
}
