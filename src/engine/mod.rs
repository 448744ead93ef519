//! The sync engine: directory import → cloud import → synchronization (pure planning) → export.
//! It knows nothing of egui or the CLI; the runner drives it for every caller.
//!
//! - `types`, `addresses`: what the steps share (progress, stop, the cycle's error; an object's
//!   mail addresses), below all of them.
//! - `cycle`: one run, step by step, recorded in the store; the only entry point (`run_cycle`).
//! - `attribute_flow`, `validation`, `plan`: the pure synchronization stage: what an AD object
//!   looks like in the cloud, IdFix's checks, joining and planning; `check` runs the checks over
//!   a whole scope (`dirsync check`).
//! - `import_changes`: what the directory import records about each object it read.
//! - `export`: the plan's writes to Graph, in three phases, kept chunk by chunk.
//! - `password_cycle`, `password_hash`: password hash sync's own cycle and Microsoft's transform
//!   of an NT hash into the credential the cloud receives.

pub mod addresses;
pub mod attribute_flow;
pub mod change_records;
pub mod check;
pub mod cloud_properties;
pub mod connections;
pub mod cycle;
pub mod drift;
pub mod export;
pub mod forest_join;
pub mod holders;
pub mod import_changes;
pub mod lost_creates;
pub mod password_cycle;
pub mod password_hash;
pub mod plan;
pub mod recorder;
pub mod rule_scope;
pub mod rules_preview;
pub mod types;
pub mod validation;
pub mod write_back;
