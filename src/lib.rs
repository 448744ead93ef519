//! dirsync: synchronizes an on-premises Active Directory to Microsoft Entra ID.
//!
//! Layout (ARCHITECTURE.md has the layers and the rules): `directory` (LDAP) and `cloud` (Graph)
//! talk to the two sides; `engine` runs the cycle; `store` keeps state and run history; `runner`
//! runs a cycle for every caller and keeps the schedule; `ui` is the window and `cli` the headless
//! commands. Only `ui` knows egui.

pub mod cli;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod credential_expiry;
pub mod directory;
pub mod engine;
pub mod guid;
pub mod hardening;
pub mod home;
pub mod log_events;
pub mod object_kind;
pub mod rules;
pub mod run_lock;
pub mod run_report;
pub mod runner;
pub mod secret;
pub mod secret_store;
pub mod setup;
pub mod store;
pub mod tls;
pub mod ui;
