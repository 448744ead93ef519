//! The sync engine: directory import → cloud import → synchronization (pure planning) → export.
//! It knows nothing of egui; the GUI and the CLI drive it through the same calls.
//!
//! So far: the vocabulary of run records (SPEC §6) that the store persists and the dashboard
//! shows (`run`), and two pure pieces of the synchronization stage: what an AD object looks like
//! in the cloud (`attribute_flow`) and IdFix's checks before export (`validation`). The cycle
//! itself (join, plan, export, run records) is issue #5.

pub mod attribute_flow;
pub mod run;
pub mod validation;
