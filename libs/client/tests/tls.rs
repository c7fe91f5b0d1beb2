//! HTTPS: a server whose certificate a private CA signed is trusted with that CA's
//! certificate (`ca_cert`), and refused without it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use verdict_client::{Client, Error, RetryPolicy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A one-route HTTPS server on a free port answering `GET /api/v1/version`; returns its
/// base URL.
fn serve_https() -> String {
    let certificates = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let connection = ServerConnection::new(config.clone()).unwrap();
            let mut stream = BufReader::new(StreamOwned::new(connection, tcp));
            let mut line = String::new();
            // A client that refuses the certificate ends the handshake: read fails.
            while stream.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = r#"{"gateway":"0.1.0","services":{"runs":"0.1.0"}}"#;
            let _ = write!(
                stream.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.get_mut().flush();
        }
    });
    format!("https://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_private_ca_makes_its_servers_trusted() {
    let client = Client::builder(serve_https())
        .ca_cert(fixture("ca.pem"))
        .build()
        .unwrap();
    let versions = client.version().await.unwrap();
    assert_eq!(versions.gateway, "0.1.0");
}

#[tokio::test]
async fn without_the_private_ca_the_server_is_refused() {
    let client = Client::builder(serve_https())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let error = client.version().await.unwrap_err();
    assert!(
        matches!(&error, Error::Transport { reason, .. } if reason.contains("UnknownIssuer")),
        "{error}"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused_when_building() {
    let error = Client::builder("https://127.0.0.1:1")
        .ca_cert(fixture("README.md"))
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("holds no PEM certificate"),
        "{error}"
    );
}
