//! The cloud side of password hash sync ("same sign-on"): an emulator extension, not Microsoft
//! Graph. Entra Connect hands password hashes to a private Microsoft service; public Graph has
//! no endpoint for them, so this one stands in for it at `{base}/dirsync/v1/passwordHashes`
//! (outside `/v1.0`), and can be switched off to look like public Graph.
//!
//! What arrives is Microsoft's documented transform of AD's NT hash, never a password:
//! `v1;PPH1_MD4,<salt hex>,<iterations>,<hash hex>;` where hash = PBKDF2-HMAC-SHA256(key =
//! UTF-16LE(uppercase hex of the NT hash), salt, iterations, 32 bytes). A sign-in recomputes it
//! from the offered password (NT hash = MD4 of its UTF-16LE form).

use std::num::NonZeroU32;
use std::time::Instant;

use md4::{Digest as _, Md4};
use serde_json::{Value, json};

use crate::app::{App, lock};
use crate::graph::{Ctx, GraphError, GraphRequest, GraphResponse, GraphResult, Perm};
use crate::identity::Caller;
use crate::model::{DirObject, Kind};

/// The most credentials one request may carry.
pub const MAX_BATCH_SIZE: usize = 50;

/// The only algorithm: Microsoft's `PPH1_MD4` (PBKDF2 over the NT hash).
const ALGORITHM: &str = "PPH1_MD4";

const SALT_LEN: usize = 10;
const HASH_LEN: usize = 32;
const MAX_ITERATIONS: u32 = 1_000_000;

/// Who may send password hashes: an application that may write users.
const PASSWORD_HASH_WRITE: Perm = Perm {
    delegated: &[],
    application: &["User.ReadWrite.All", "Directory.ReadWrite.All"],
};

/// A parsed `v1;PPH1_MD4,…;` credential.
struct Credential {
    salt: Vec<u8>,
    iterations: NonZeroU32,
    hash: Vec<u8>,
}

/// Parses exactly `v1;PPH1_MD4,` + 20 hex digits + `,` + iterations (1 to 1,000,000, decimal) +
/// `,` + 64 hex digits + `;` (hex in either case).
fn parse(text: &str) -> Option<Credential> {
    let body = text.strip_prefix("v1;PPH1_MD4,")?.strip_suffix(';')?;
    let mut parts = body.split(',');
    let (salt, iterations, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // `parse` alone would take a leading `+`.
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iterations: u32 = iterations.parse().ok()?;
    if iterations > MAX_ITERATIONS {
        return None;
    }
    Some(Credential {
        salt: hex_bytes(salt, SALT_LEN)?,
        iterations: NonZeroU32::new(iterations)?,
        hash: hex_bytes(hash, HASH_LEN)?,
    })
}

/// Exactly `len` bytes written as hex digits (either case).
fn hex_bytes(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok())
        .collect()
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// AD's NT hash of a password: MD4 of its UTF-16LE form.
fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// The PBKDF2 password Microsoft's transform uses: the NT hash as uppercase hex, in UTF-16LE
/// (64 bytes).
fn pbkdf2_key(nt_hash: &[u8; 16]) -> Vec<u8> {
    let hex: String = nt_hash.iter().map(|b| format!("{b:02X}")).collect();
    utf16le(&hex)
}

/// Whether `password` is the password a stored credential was made from. A credential that
/// does not parse (it was checked when stored) verifies nothing.
pub fn verify(credential: &str, password: &str) -> bool {
    let Some(credential) = parse(credential) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        credential.iterations,
        &credential.salt,
        &pbkdf2_key(&nt_hash(password)),
        &credential.hash,
    )
    .is_ok()
}

/// Whether a user comes from an on-premises directory. Graph never sets `onPremisesSyncEnabled`
/// on objects it creates (only Entra's sync service does), and dirsync provisions through
/// Graph, so here a user carrying an `onPremisesImmutableId` (the on-premises anchor) counts too.
fn synchronized(user: &DirObject) -> bool {
    user.bool_prop("onPremisesSyncEnabled") == Some(true)
        || user
            .str_prop("onPremisesImmutableId")
            .is_some_and(|anchor| !anchor.is_empty())
}

/// `GET` and `POST {base}/dirsync/v1/passwordHashes`, once the bearer token is valid.
pub fn handle(app: &App, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    let result = match req.method.as_str() {
        "GET" => Ok(GraphResponse::ok(json!({
            "maxBatchSize": MAX_BATCH_SIZE,
            "algorithms": [ALGORITHM],
        }))),
        "POST" => set(&Ctx { app, caller, req }),
        _ => Err(GraphError::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )),
    };
    result.unwrap_or_else(|error| error.into_response(req))
}

/// One item of a request, as sent.
struct Item {
    id: String,
    credential: String,
}

/// The items of a POST body, or why the whole request is refused. The messages never quote the
/// body: it holds credentials.
fn items(body: Option<&[u8]>) -> Result<Vec<Item>, GraphError> {
    let bad = |message: &str| GraphError::bad_request("Request_BadRequest", message);
    let shape = r#"The request body must be {"value":[{"id":"<user id>","credential":"v1;PPH1_MD4,…;"}, …]}."#;
    let body: Value = serde_json::from_slice(body.unwrap_or_default())
        .map_err(|_| bad(&format!("The request body is not valid JSON. {shape}")))?;
    let Some(value) = body.get("value").and_then(Value::as_array) else {
        return Err(bad(shape));
    };
    if value.is_empty() {
        return Err(bad(
            "The request carries no password hashes: 'value' is empty.",
        ));
    }
    if value.len() > MAX_BATCH_SIZE {
        return Err(bad(&format!(
            "A request may carry at most {MAX_BATCH_SIZE} password hashes; this one carries {}.",
            value.len()
        )));
    }
    value
        .iter()
        .map(|item| {
            let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
            match (text("id"), text("credential")) {
                (Some(id), Some(credential)) => Ok(Item { id, credential }),
                _ => Err(bad(&format!(
                    "Every item needs a string 'id' and a string 'credential'. {shape}"
                ))),
            }
        })
        .collect()
}

/// `POST`: stores each user's credential; one result per item, in order.
fn set(ctx: &Ctx<'_>) -> GraphResult {
    // One write against Graph's write limit, as a Graph write would be (taken before anything
    // is checked, as `graph::execute` does).
    if let Err(wait) = lock(&ctx.app.limiter).try_write(&ctx.caller.client_id, Instant::now()) {
        return Err(GraphError::throttled(
            wait,
            "Tenant_Application/Write",
            &ctx.caller.client_id,
            "WriteLimitExceeded",
        ));
    }
    PASSWORD_HASH_WRITE.check(ctx.caller)?;
    let items = items(ctx.req.body.as_deref())?;
    ctx.write(|inner| {
        let mut results = Vec::with_capacity(items.len());
        for item in &items {
            // Object IDs are kept lowercase; accept them in any case.
            let key = [item.id.clone(), item.id.to_ascii_lowercase()]
                .into_iter()
                .find(|key| inner.state.live_of(Kind::User, key).is_some());
            let user = key
                .as_deref()
                .and_then(|key| inner.state.objects.get_mut(key));
            let outcome = match user {
                None => Err(GraphError::not_found(&item.id)),
                Some(user) if !synchronized(user) => Err(GraphError::bad_request(
                    "Request_BadRequest",
                    "Password hashes can only be set for users synchronized from on-premises directories.",
                )),
                Some(_) if parse(&item.credential).is_none() => Err(GraphError::bad_request(
                    "Request_BadRequest",
                    "The credential is not a valid v1;PPH1_MD4 value.",
                )),
                Some(user) => {
                    // From now on the on-premises password signs in, and only it.
                    user.internal.synced_password_credential = Some(item.credential.clone());
                    user.internal.password_salt = None;
                    user.internal.password_hash = None;
                    user.internal.force_change_password = false;
                    Ok(())
                }
            };
            // Not a Graph property: no change sequence (delta shows nothing), but the state
            // file gets the user's new record.
            if let (Ok(()), Some(key)) = (&outcome, &key) {
                inner.touch(key);
            }
            results.push(match outcome {
                Ok(()) => json!({"id": item.id, "status": 204}),
                Err(error) => json!({
                    "id": item.id,
                    "status": error.status,
                    "error": {"code": error.code, "message": error.message},
                }),
            });
        }
        Ok(GraphResponse::ok(json!({ "value": results })))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Python: `hashlib.pbkdf2_hmac('sha256',
    /// '8846F7EAEE8FB117AD06BDD830B7586C'.encode('utf-16-le'),
    /// bytes.fromhex('00112233445566778899'), 1000, 32).hex()`.
    const KNOWN_HASH: &str = "9ffb6cdb25b9bf88f869082fcb5bc58a7ec0c5d317b126a8ab4ec316c053cd11";

    fn known_credential() -> String {
        format!("v1;PPH1_MD4,00112233445566778899,1000,{KNOWN_HASH};")
    }

    #[test]
    fn the_nt_hash_of_password_is_the_well_known_one() {
        let hex: String = nt_hash("password")
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(hex, "8846F7EAEE8FB117AD06BDD830B7586C");
        assert_eq!(pbkdf2_key(&nt_hash("password")).len(), 64);
    }

    #[test]
    fn a_known_credential_verifies_its_password_only() {
        let credential = known_credential();
        assert!(verify(&credential, "password"));
        assert!(!verify(&credential, "Password"));
        assert!(!verify(&credential, ""));
        // Hex in either case.
        let upper = format!(
            "v1;PPH1_MD4,00112233445566778899,1000,{};",
            KNOWN_HASH.to_uppercase()
        );
        assert!(verify(&upper, "password"));
    }

    #[test]
    fn only_the_exact_format_parses() {
        let good = known_credential();
        assert!(parse(&good).is_some());
        let salt = "00112233445566778899";
        for bad in [
            String::new(),
            good.trim_end_matches(';').to_owned(),
            good.replace("v1;", "v2;"),
            good.replace("PPH1_MD4", "PPH1_MD5"),
            format!("v1;PPH1_MD4,{},1000,{KNOWN_HASH};", &salt[2..]),
            format!("v1;PPH1_MD4,{salt}00,1000,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},1000,{};", &KNOWN_HASH[2..]),
            format!("v1;PPH1_MD4,0011223344556677889g,1000,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},0,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},1000001,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},+1000,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},,{KNOWN_HASH};"),
            format!("v1;PPH1_MD4,{salt},1000,{KNOWN_HASH},00;"),
            format!("v1;PPH1_MD4,{salt},1000,{KNOWN_HASH};;"),
            format!(" {good}"),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
            assert!(!verify(&bad, "password"), "{bad}");
        }
        assert!(parse(&format!("v1;PPH1_MD4,{salt},1000000,{KNOWN_HASH};")).is_some());
        assert!(parse(&format!("v1;PPH1_MD4,{salt},1,{KNOWN_HASH};")).is_some());
    }

    #[test]
    fn bodies_are_refused_whole_without_quoting_them() {
        let item = json!({"id": "x", "credential": "v1;PPH1_MD4,secret;"});
        let too_many = json!({"value": vec![item.clone(); MAX_BATCH_SIZE + 1]});
        for body in [
            b"not json".to_vec(),
            b"{}".to_vec(),
            json!({"value": []}).to_string().into_bytes(),
            json!({"value": [{"id": "x"}]}).to_string().into_bytes(),
            json!({"value": "v1;PPH1_MD4,secret;"})
                .to_string()
                .into_bytes(),
            too_many.to_string().into_bytes(),
        ] {
            let error = items(Some(&body)).err().expect("refused");
            assert_eq!(
                (error.status, error.code.as_str()),
                (400, "Request_BadRequest")
            );
            assert!(!error.message.contains("secret"), "{}", error.message);
        }
        assert!(items(None).is_err());
        let fifty = json!({"value": vec![item; MAX_BATCH_SIZE]}).to_string();
        assert_eq!(items(Some(fifty.as_bytes())).expect("accepted").len(), 50);
    }
}
