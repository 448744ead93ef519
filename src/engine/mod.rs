//! The sync engine: directory import → cloud import → synchronization (pure planning) → export.
//! It knows nothing of egui; the GUI and the CLI drive it through the same calls.
//!
//! So far: the vocabulary of run records (SPEC §6) that the store persists and the dashboard
//! shows (`run`), and the pure synchronization stage: what an AD object looks like in the cloud
//! (`attribute_flow`), IdFix's checks before export (`validation`), and joining and planning
//! (`plan`). The cycle around them (imports, export, run records, the CLI) is issue #5.

pub mod attribute_flow;
pub mod cycle;
pub mod export;
pub mod plan;
pub mod run;
pub mod validation;
