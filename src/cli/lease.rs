//! `dirsync lease`, `dirsync promote`, `dirsync step-down` (README, "Two hosts, one
//! database").

use super::{CliError, EXIT_SUCCESS, LeaseArgs};
use crate::home::Home;
use crate::runner::audit::Source;
use crate::runner::lease::{lease_view, promote, step_down};
use crate::store::export_lease::Promotion;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Show,
    Promote,
    StepDown,
}

pub fn run(action: Action, args: &LeaseArgs, home: &Home) -> Result<u8, CliError> {
    let done = match action {
        Action::Show => None,
        Action::Promote => Some(match promote(home, Source::Cli)? {
            Promotion::Holder => {
                "Promoted: this host holds the export lease and exports from its next cycle"
                    .to_owned()
            }
            Promotion::Asked { holder, expires_at } => format!(
                "Promoted: {holder} hands the export lease over at its next export batch or cycle (by {} at the latest, if it has stopped)",
                crate::clock::human_time(expires_at)
            ),
        }),
        Action::StepDown => {
            step_down(home, Source::Cli)?;
            Some("Stepped down: this host exports nothing until it is promoted".to_owned())
        }
    };
    let view = lease_view(home)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "host": view.host,
                "holder": view.holder,
                "exports": view.this_host_exports(),
                "expires_at": view.lease.expires_at,
                "wanted_by": view.lease.wanted_by,
                "stood_down": view.lease.stood_down,
                "lease_ms": view.lease_ms,
                "done": done,
            })
        );
    } else {
        if let Some(done) = done {
            println!("{done}.");
        }
        println!("{}.", view.in_words());
    }
    Ok(EXIT_SUCCESS)
}
