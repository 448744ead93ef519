//! The one TLS setup of the program: rustls with the ring provider, used by LDAP and by HTTPS.
//! Certificate verification is on unless the administrator explicitly chose otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which certificates a server may present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// The operating system's trusted roots.
    SystemRoots,
    /// Only certificates issued by the CA(s) in this PEM file (for example the domain's own CA).
    CaFile(PathBuf),
    /// No verification at all. Only ever set by an explicit choice (`--insecure`, a red checkbox).
    Insecure,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the CA file {path}: {reason}")]
    CaFileUnreadable { path: PathBuf, reason: String },
    #[error("the CA file {path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    CaFileEmpty { path: PathBuf },
    #[error("the CA file {path} has a certificate rustls rejects: {reason}")]
    CaFileInvalid { path: PathBuf, reason: String },
    #[error("no trusted root certificates found on this system; pass a CA file")]
    NoSystemRoots,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration for `trust`.
pub fn client_config(trust: &TlsTrust) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions");
    let config = match trust {
        TlsTrust::SystemRoots => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
        TlsTrust::CaFile(path) => builder
            .with_root_certificates(roots_from_file(path)?)
            .with_no_client_auth(),
        TlsTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn system_roots() -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    // Unreadable individual system certificates are skipped, as browsers do.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsSetupError::NoSystemRoots);
    }
    Ok(roots)
}

/// Reads every certificate of a PEM file into a root store.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|error| TlsSetupError::CaFileUnreadable {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|error| TlsSetupError::CaFileInvalid {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        roots
            .add(cert)
            .map_err(|error| TlsSetupError::CaFileInvalid {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::CaFileEmpty {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

/// Accepts any certificate but still checks the handshake signatures, so the session is at least
/// bound to whatever key the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        let error = client_config(&TlsTrust::CaFile(missing.clone())).expect_err("missing file");
        assert!(error.to_string().contains(&missing.display().to_string()));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let error = client_config(&TlsTrust::CaFile(empty)).expect_err("no PEM");
        assert!(
            matches!(error, TlsSetupError::CaFileEmpty { .. }),
            "{error}"
        );
    }

    #[test]
    fn insecure_builds_a_config() {
        assert!(client_config(&TlsTrust::Insecure).is_ok());
    }
}
