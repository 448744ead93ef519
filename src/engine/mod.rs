//! The sync engine: directory import → cloud import → synchronization (pure planning) → export.
//! It knows nothing of egui; the GUI and the CLI drive it through the same calls.
//!
//! So far this holds the vocabulary of run records (SPEC §6) that the store persists and the
//! dashboard shows.

pub mod run;
