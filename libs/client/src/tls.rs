//! HTTPS: rustls with ring (the one crypto provider in the build), verifying servers
//! against the system's roots and, when given, a private CA's certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use rustls_platform_verifier::Verifier;

use crate::Error;

/// A TLS configuration of its own, so the client never depends on (or sets) the
/// process's default provider.
pub(crate) fn client_config(ca_cert: Option<&Path>) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match ca_cert {
        None => Verifier::new(provider.clone()),
        Some(path) => Verifier::new_with_extra_roots(read_certificates(path)?, provider.clone()),
    }
    .map_err(|err| Error::Config(format!("cannot set up certificate verification: {err}")))?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Config(format!("cannot set up TLS: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Every certificate of a PEM file; an error when it holds none.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            Error::Config(format!(
                "{}: not a PEM certificate file: {err}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(Error::Config(format!(
            "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certificates)
}
