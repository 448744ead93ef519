//! The window's colours, in one place, for the light and the dark theme.

use egui::Color32;

fn dark(ui: &egui::Ui) -> bool {
    ui.visuals().dark_mode
}

/// A failed check, a refused value.
pub fn error(ui: &egui::Ui) -> Color32 {
    if dark(ui) {
        Color32::from_rgb(255, 120, 110)
    } else {
        Color32::from_rgb(190, 20, 20)
    }
}

/// Something to know before going on.
pub fn warning(ui: &egui::Ui) -> Color32 {
    if dark(ui) {
        Color32::from_rgb(240, 190, 90)
    } else {
        Color32::from_rgb(160, 95, 0)
    }
}

/// A passed check.
pub fn ok(ui: &egui::Ui) -> Color32 {
    if dark(ui) {
        Color32::from_rgb(120, 220, 130)
    } else {
        Color32::from_rgb(20, 130, 40)
    }
}

/// An explicit insecure choice (certificate verification off): always red.
pub fn insecure(ui: &egui::Ui) -> Color32 {
    error(ui)
}

/// A run in progress.
pub fn running(ui: &egui::Ui) -> Color32 {
    if dark(ui) {
        Color32::from_rgb(110, 170, 255)
    } else {
        Color32::from_rgb(20, 90, 200)
    }
}

/// Text on a coloured status badge.
pub fn on_badge(ui: &egui::Ui) -> Color32 {
    if dark(ui) {
        Color32::from_rgb(20, 20, 20)
    } else {
        Color32::WHITE
    }
}

/// A value that was added (the new side of a diff).
pub fn added(ui: &egui::Ui) -> Color32 {
    ok(ui)
}

/// A value that was removed (the old side of a diff).
pub fn removed(ui: &egui::Ui) -> Color32 {
    error(ui)
}
