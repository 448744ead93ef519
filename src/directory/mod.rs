//! Active Directory over LDAP (ldap3): the connection, the forest's facts, the OU tree.
//! Knows nothing of the GUI or the cloud.

pub mod account_protection;
pub mod connection;
pub mod controls;
pub mod dn;
pub mod error;
pub mod forest;
pub mod import;
pub mod objects;
pub mod ou_tree;
pub mod password_hashes;
pub mod permissions;
pub mod reader;
pub mod samba_gpg;
pub mod scope;
pub mod security_descriptor;
pub mod service_account;
pub mod setup;
pub mod sid;
pub mod supplemental_credentials;
pub mod write_back;

pub use connection::{DirectoryConnection, DirectoryTarget};
pub use dn::Dn;
pub use error::DirectoryError;
