//! Active Directory over LDAP (ldap3): the connection, the forest's facts, the OU tree.
//! Knows nothing of the GUI or the cloud.

pub mod connection;
pub mod dn;
pub mod error;
pub mod forest;
pub mod ou_tree;
pub mod security_descriptor;
pub mod sid;

pub use connection::{DirectoryConnection, DirectoryTarget};
pub use dn::Dn;
pub use error::DirectoryError;
