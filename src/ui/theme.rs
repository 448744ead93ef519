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
