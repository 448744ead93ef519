//! The export lease strip (README, "Two hosts, one database"): shown when the state is in
//! PostgreSQL, it says which host exports, and offers Promote and Step down. Reads and changes
//! run off the UI thread; the strip looks again every few seconds.

use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::home::Home;
use crate::runner::audit::Source;
use crate::runner::lease::{LeaseView, lease_view, promote, step_down};
use crate::store::export_lease::Promotion;
use crate::ui::task::Lookup;

const LOOK_AGAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct ExportLeaseStrip {
    view: Lookup<LeaseView>,
    /// The last view read, shown while the next is read.
    shown: Option<LeaseView>,
    checked_at: Option<Instant>,
    /// A promote or step down on its way, then what it did.
    action: Lookup<String>,
}

impl ExportLeaseStrip {
    fn poll(&mut self, home: &Home, runtime: &Handle, repaint: &egui::Context) {
        self.view.poll();
        self.action.poll();
        if let Lookup::Done(view) = &self.view {
            self.shown = Some(view.clone());
        }
        let due = self
            .checked_at
            .is_none_or(|checked| checked.elapsed() >= LOOK_AGAIN);
        if due && !self.view.is_running() && !self.action.is_running() {
            self.checked_at = Some(Instant::now());
            let home = home.clone();
            self.view = Lookup::read(runtime, repaint, move || {
                lease_view(&home).map_err(|error| error.to_string())
            });
            repaint.request_repaint_after(LOOK_AGAIN);
        }
    }
}

/// The strip, under the top bar.
pub fn export_lease_ui(
    ui: &mut egui::Ui,
    strip: &mut ExportLeaseStrip,
    home: &Home,
    runtime: &Handle,
) {
    strip.poll(home, runtime, ui.ctx());
    ui.horizontal_wrapped(|ui| {
        ui.strong("Export lease:");
        match (&strip.shown, &strip.view) {
            (_, Lookup::Failed(failure)) => {
                ui.colored_label(crate::ui::theme::error(ui), failure.message.as_str());
            }
            (Some(view), _) => {
                ui.label(view.in_words());
            }
            (None, _) => {
                ui.label("reading…");
            }
        }
        let busy = strip.action.is_running();
        let exports = strip.shown.as_ref().is_some_and(LeaseView::this_host_exports);
        if ui
            .add_enabled(!busy && !exports, egui::Button::new("Promote this host"))
            .on_hover_text("Make this host the one that exports: at once if no host holds the lease, else the holder hands it over at its next export batch or cycle")
            .clicked()
        {
            let home = home.clone();
            strip.action = Lookup::read(runtime, ui.ctx(), move || {
                match promote(&home, Source::Dashboard).map_err(|error| error.to_string())? {
                    Promotion::Holder => Ok("Promoted: this host exports from its next cycle".to_owned()),
                    Promotion::Asked { holder, .. } => Ok(format!(
                        "Promoted: {holder} hands the lease over at its next export batch or cycle"
                    )),
                }
            });
            strip.checked_at = None;
        }
        if ui
            .add_enabled(!busy, egui::Button::new("Step down"))
            .on_hover_text("Stop exporting from this host: another host takes the lease at its next cycle; this one stays a standby until promoted")
            .clicked()
        {
            let home = home.clone();
            strip.action = Lookup::read(runtime, ui.ctx(), move || {
                step_down(&home, Source::Dashboard)
                    .map(|()| "Stepped down: this host exports nothing until promoted".to_owned())
                    .map_err(|error| error.to_string())
            });
            strip.checked_at = None;
        }
        match &strip.action {
            Lookup::Done(done) => {
                ui.label(done.as_str());
            }
            Lookup::Failed(failure) => {
                ui.colored_label(crate::ui::theme::error(ui), failure.message.as_str());
            }
            _ => {}
        }
    });
}
