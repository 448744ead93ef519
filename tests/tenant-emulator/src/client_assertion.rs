//! Certificate credentials: a confidential client proves itself with a JWT it signed with the
//! private key of a certificate in its application's `keyCredentials`, as
//! https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials describes:
//! header `alg` PS256 or RS256 and `x5t#S256` (or the older `x5t`), claims `aud` (the token
//! endpoint), `iss` and `sub` (the client id), `jti`, `nbf` and `exp`. Error codes follow
//! https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::Value;

use crate::app::App;
use crate::identity::StsError;
use crate::model::DirObject;
use crate::util::unix_now;
use crate::x509;

/// How far the clocks of the client and the service may differ.
const CLOCK_SKEW_SECS: i64 = 300;

fn refused(code: u32, description: impl Into<String>) -> StsError {
    StsError::new(401, "invalid_client", code, description)
}

fn malformed() -> StsError {
    StsError::new(
        400,
        "invalid_request",
        50_027,
        "JWT token is invalid or malformed.",
    )
}

/// Verifies `assertion` for the application `registered`; `audiences` are the token endpoint's
/// URLs (by tenant id and as the request named the tenant).
pub fn verify(
    app: &App,
    registered: &DirObject,
    assertion: &str,
    audiences: &[&str],
) -> Result<(), StsError> {
    let client_id = registered.str_prop("appId").unwrap_or_default();
    let mut parts = assertion.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let decode = |part: &str| -> Result<Value, StsError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        serde_json::from_slice(&bytes).map_err(|_| malformed())
    };
    let header = decode(header_b64)?;
    let claims = decode(claims_b64)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed())?;
    let algorithm: &dyn signature::VerificationAlgorithm =
        match header.get("alg").and_then(Value::as_str) {
            Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
            Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => {
                return Err(refused(
                    5_002_738,
                    "The client assertion's 'alg' must be PS256 or RS256.",
                ));
            }
        };
    let thumbprint = |name: &str| {
        header
            .get(name)
            .and_then(Value::as_str)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
    };
    let (sha256, sha1) = (thumbprint("x5t#S256"), thumbprint("x5t"));
    let delay = app.replication_delay();
    let found = registered
        .internal
        .keys
        .iter()
        .filter(|key| !app.younger_than(&key.key_id, delay))
        .find_map(|key| {
            let der = base64::engine::general_purpose::STANDARD
                .decode(&key.certificate)
                .ok()?;
            let certificate = x509::parse(&der)?;
            let matches = sha256.as_deref() == Some(certificate.sha256.as_slice())
                || sha1.as_deref() == Some(certificate.sha1.as_slice());
            matches.then_some((key, certificate))
        });
    let Some((key, certificate)) = found else {
        let shown = header
            .get("x5t#S256")
            .or_else(|| header.get("x5t"))
            .and_then(Value::as_str)
            .unwrap_or("none");
        return Err(refused(
            700_027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        ));
    };
    let signed = format!("{header_b64}.{claims_b64}");
    UnparsedPublicKey::new(algorithm, &certificate.rsa_public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| {
            refused(
                700_027,
                "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
            )
        })?;
    let now = unix_now();
    if key.end <= now {
        return Err(refused(
            700_027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{}']",
                header
                    .get("x5t#S256")
                    .or_else(|| header.get("x5t"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
        ));
    }
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(client_id) || claim("sub") != Some(client_id) {
        return Err(refused(
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    if !claim("aud").is_some_and(|aud| audiences.contains(&aud)) {
        return Err(refused(
            700_023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    if claim("jti").is_none_or(str::is_empty) {
        return Err(malformed());
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (Some(exp), nbf) = (time("exp"), time("nbf")) else {
        return Err(malformed());
    };
    if exp + CLOCK_SKEW_SECS <= now || nbf.is_some_and(|nbf| nbf - CLOCK_SKEW_SECS > now) {
        return Err(refused(
            700_024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}
