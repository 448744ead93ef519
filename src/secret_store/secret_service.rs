//! The desktop's keyring through the freedesktop Secret Service API over D-Bus (GNOME Keyring,
//! KWallet, KeePassXC): https://specifications.freedesktop.org/secret-service-spec/latest/
//!
//! Unlike the kernel keyring it survives a logout and a reboot (the keyring daemon keeps it on
//! disk, encrypted with the user's login password). dirsync files each secret in the default
//! collection under the attributes `service = dirsync` and `username = <key>` (as the `keyring`
//! crate does), so `secret-tool lookup service dirsync username <key>` finds it. Secrets cross the
//! session bus in the "plain" session algorithm: the bus is the user's own, and a process that can
//! listen on it can read the keyring anyway.

use std::collections::HashMap;

use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

use super::KEYRING_SERVICE;
use crate::secret::Secret;

const DESTINATION: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE: &str = "org.freedesktop.Secret.Service";
const COLLECTION: &str = "org.freedesktop.Secret.Collection";
const ITEM: &str = "org.freedesktop.Secret.Item";

/// A secret as the API carries it: (session, parameters, value, content type).
type WireSecret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

/// A connection to the session's Secret Service with its default collection unlocked.
#[derive(Debug)]
pub struct SecretService {
    connection: zbus::Connection,
    session: OwnedObjectPath,
    collection: OwnedObjectPath,
}

impl SecretService {
    /// The Secret Service of the session bus at `address` (`DBUS_SESSION_BUS_ADDRESS`), or why
    /// there is none to use: no bus, no service on it, no default collection, or one that is
    /// locked (unlocking it would need the user at a prompt).
    pub fn connect(address: &str) -> Result<SecretService, String> {
        futures::executor::block_on(Self::connect_async(address))
    }

    async fn connect_async(address: &str) -> Result<SecretService, String> {
        let connection = zbus::connection::Builder::address(address)
            .map_err(|error| format!("the session bus address is not valid: {error}"))?
            .build()
            .await
            .map_err(|error| format!("cannot reach the session bus: {error}"))?;
        let (_, session): (zbus::zvariant::OwnedValue, OwnedObjectPath) = call(
            &connection,
            (SERVICE_PATH, SERVICE, "OpenSession"),
            &("plain", Value::from("")),
            "reach a Secret Service on the session bus",
        )
        .await?;
        let collection: OwnedObjectPath = call(
            &connection,
            (SERVICE_PATH, SERVICE, "ReadAlias"),
            &("default",),
            "find the default collection",
        )
        .await?;
        if collection.as_str() == "/" {
            return Err("the Secret Service has no default collection".to_owned());
        }
        let service = SecretService {
            connection,
            session,
            collection,
        };
        service.unlock(&service.collection).await?;
        Ok(service)
    }

    /// The secret filed under `key`, if there is one.
    pub fn load(&self, key: &str) -> Result<Option<Secret>, String> {
        futures::executor::block_on(async {
            let Some(item) = self.find(key).await? else {
                return Ok(None);
            };
            let (_, _, value, _): WireSecret = call(
                &self.connection,
                (item.as_str(), ITEM, "GetSecret"),
                &(&self.session,),
                "read the secret",
            )
            .await?;
            let value = zeroize::Zeroizing::new(value);
            let text = std::str::from_utf8(&value)
                .map_err(|_| format!("the secret '{key}' is not text"))?;
            Ok(Some(Secret::new(text)))
        })
    }

    /// Files `secret` under `key`, replacing what was there.
    pub fn save(&self, key: &str, secret: &Secret) -> Result<(), String> {
        futures::executor::block_on(async {
            let attributes = attributes(key);
            let label = format!("{KEYRING_SERVICE}: {key}");
            let properties: HashMap<&str, Value<'_>> = HashMap::from([
                ("org.freedesktop.Secret.Item.Label", Value::from(label)),
                (
                    "org.freedesktop.Secret.Item.Attributes",
                    Value::from(attributes),
                ),
            ]);
            let value = zeroize::Zeroizing::new(secret.expose().as_bytes().to_vec());
            let wire = (
                &self.session,
                Vec::<u8>::new(),
                value.as_slice(),
                "text/plain",
            );
            let (_, prompt): (OwnedObjectPath, OwnedObjectPath) = call(
                &self.connection,
                (self.collection.as_str(), COLLECTION, "CreateItem"),
                &(properties, wire, true),
                "save the secret",
            )
            .await?;
            no_prompt(&prompt, "save the secret")
        })
    }

    /// Removes what is filed under `key`; nothing there is not an error.
    pub fn remove(&self, key: &str) -> Result<(), String> {
        futures::executor::block_on(async {
            while let Some(item) = self.find(key).await? {
                let prompt: OwnedObjectPath = call(
                    &self.connection,
                    (item.as_str(), ITEM, "Delete"),
                    &(),
                    "remove the secret",
                )
                .await?;
                no_prompt(&prompt, "remove the secret")?;
            }
            Ok(())
        })
    }

    /// The item filed under `key`, unlocked.
    async fn find(&self, key: &str) -> Result<Option<OwnedObjectPath>, String> {
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) = call(
            &self.connection,
            (SERVICE_PATH, SERVICE, "SearchItems"),
            &(attributes(key),),
            "search the keyring",
        )
        .await?;
        if let Some(item) = unlocked.into_iter().next() {
            return Ok(Some(item));
        }
        match locked.into_iter().next() {
            Some(item) => {
                self.unlock(&item).await?;
                Ok(Some(item))
            }
            None => Ok(None),
        }
    }

    /// Unlocks `object` when that needs no prompt; a prompt means the user must unlock the
    /// keyring themselves.
    async fn unlock(&self, object: &OwnedObjectPath) -> Result<(), String> {
        let objects: Vec<ObjectPath<'_>> = vec![object.as_ref()];
        let (_, prompt): (Vec<OwnedObjectPath>, OwnedObjectPath) = call(
            &self.connection,
            (SERVICE_PATH, SERVICE, "Unlock"),
            &(objects,),
            "unlock the keyring",
        )
        .await?;
        no_prompt(&prompt, "unlock the keyring")
    }
}

fn attributes(key: &str) -> HashMap<&str, &str> {
    HashMap::from([("service", KEYRING_SERVICE), ("username", key)])
}

/// The API answers "/" when it needs no prompt; anything else asks for the user at the desktop.
fn no_prompt(prompt: &OwnedObjectPath, what: &str) -> Result<(), String> {
    if prompt.as_str() == "/" {
        Ok(())
    } else {
        Err(format!(
            "the desktop keyring is locked and asks for its password to {what}: unlock it (log in to the desktop, or open the keyring in Passwords and Keys)"
        ))
    }
}

/// Calls `method` of `interface` on the Secret Service's object at `path` and reads its answer;
/// `what` says what the call was for, in an error.
async fn call<B, R>(
    connection: &zbus::Connection,
    (path, interface, method): (&str, &str, &str),
    body: &B,
    what: &str,
) -> Result<R, String>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let reply = connection
        .call_method(Some(DESTINATION), path, Some(interface), method, body)
        .await
        .map_err(|error| format!("cannot {what}: {error}"))?;
    reply
        .body()
        .deserialize()
        .map_err(|error| format!("the Secret Service answered outside its API: {error}"))
}
