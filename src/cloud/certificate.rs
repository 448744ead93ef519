//! The sync app's certificate credential, as Entra Connect uses one: an RSA key made on this host
//! that never leaves it, a self-signed certificate for it registered on the app
//! (`keyCredentials`), and, for each token, a client assertion signed with the key
//! (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials). Unlike a
//! client secret, nothing that signs in is ever sent: Graph keeps only the public certificate.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rsa::pkcs8::EncodePrivateKey as _;
use serde_json::json;
use zeroize::Zeroizing;

use crate::secret::Secret;

/// How long a new certificate is valid. Entra accepts longer; two years matches a client
/// secret's default, and the dashboard warns 30 days before and renews it.
pub const CERTIFICATE_LIFETIME_DAYS: i64 = 730;
/// RSA key size: Entra requires at least 2048 bits for a certificate credential.
const KEY_BITS: usize = 2048;
/// A client assertion is good for a few minutes; a new one is made for every token request.
const ASSERTION_LIFETIME_SECS: u64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot make the app's certificate: {0}")]
    Make(String),
    #[error(
        "the sync app's private key is not a key dirsync made (not a PKCS #8 RSA key); run setup again to make a new certificate"
    )]
    BadKey,
    #[error("cannot sign the sync app's client assertion: {0}")]
    Sign(String),
}

/// A new certificate credential: the public certificate for Graph, the private key for this
/// host's secret store.
#[derive(Debug)]
pub struct NewCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The private key, PKCS #8 PEM. Kept only where secrets are kept.
    pub private_key: Secret,
    /// `x5t#S256`: the base64url SHA-256 of the certificate, which names it in an assertion.
    pub thumbprint: String,
    /// When it expires (Unix seconds).
    pub not_after: i64,
}

impl NewCertificate {
    /// The `keyCredentials` entry that registers it on an application.
    /// https://learn.microsoft.com/en-us/graph/api/resources/keycredential?view=graph-rest-1.0
    pub fn key_credential(&self, display_name: &str) -> serde_json::Value {
        json!({
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": STANDARD.encode(&self.der),
            "displayName": display_name,
        })
    }
}

/// Makes an RSA key and a self-signed certificate `CN=<common_name>` valid from now for
/// [`CERTIFICATE_LIFETIME_DAYS`].
pub fn make_certificate(common_name: &str) -> Result<NewCertificate, CertificateError> {
    let make = |error: &dyn std::fmt::Display| CertificateError::Make(error.to_string());
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|error| make(&error))?;
    let pkcs8 = key.to_pkcs8_der().map_err(|error| make(&error))?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|error| make(&error))?;
    let der_key = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let signing = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der_key, &rcgen::PKCS_RSA_SHA256)
        .map_err(|error| make(&error))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|error| make(&error))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    // A few minutes back, so that a clock slightly behind Entra's does not see it as future.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(CERTIFICATE_LIFETIME_DAYS);
    let certificate = params.self_signed(&signing).map_err(|error| make(&error))?;
    let der = certificate.der().to_vec();
    Ok(NewCertificate {
        thumbprint: thumbprint(&der),
        not_after: params.not_after.unix_timestamp(),
        der,
        private_key: Secret::new(pem.as_str()),
    })
}

/// `x5t#S256` of a certificate: base64url of the SHA-256 of its DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// A client assertion for `client_id` at the token endpoint `token_url`, signed (PS256) with the
/// private key (PKCS #8 PEM) of the certificate `thumbprint` names.
pub fn client_assertion(
    client_id: &str,
    token_url: &str,
    private_key: &Secret,
    thumbprint: &str,
) -> Result<Secret, CertificateError> {
    let der = pem_body(private_key.expose()).ok_or(CertificateError::BadKey)?;
    let key = RsaKeyPair::from_pkcs8(&der).map_err(|_| CertificateError::BadKey)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut jti)
        .map_err(|_| CertificateError::Sign("the random number generator failed".to_owned()))?;
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint});
    let claims = json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| CertificateError::Sign("the key refused to sign".to_owned()))?;
    Ok(Secret::new(format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

/// The DER inside a PEM block.
fn pem_body(pem: &str) -> Option<Zeroizing<Vec<u8>>> {
    let body: Zeroizing<String> = Zeroizing::new(
        pem.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("-----"))
            .collect(),
    );
    STANDARD.decode(body.as_bytes()).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_signs_assertions_its_public_key_verifies() {
        let certificate = make_certificate("dirsync (test)").expect("made");
        assert_eq!(certificate.thumbprint.len(), 43, "base64url of 32 bytes");
        let assertion = client_assertion(
            "client",
            "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            &certificate.private_key,
            &certificate.thumbprint,
        )
        .expect("signed");
        let parts: Vec<&str> = assertion.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], certificate.thumbprint.as_str());
        // The key in the certificate verifies the signature (rcgen parsed it to sign; the
        // public key is the PKCS #8 key's).
        let der = pem_body(certificate.private_key.expose()).expect("PEM");
        let key = RsaKeyPair::from_pkcs8(&der).expect("key");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PSS_2048_8192_SHA256,
            key.public().as_ref(),
        );
        public
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
            )
            .expect("verifies");
        assert!(
            client_assertion("c", "u", &Secret::new("not a key"), "t").is_err(),
            "a broken key is an error"
        );
    }
}
