//! `dirsync trace OBJECT [--json]`: one object walked through a cycle's stages (README,
//! "Tracing one object"), printed stage by stage or as one JSON document.

use super::{CliError, EXIT_SUCCESS, TraceArgs};
use crate::home::Home;
use crate::run_report::trace_text;
use crate::runner;

pub async fn run(args: &TraceArgs, home: &Home) -> Result<u8, CliError> {
    let trace = runner::trace_object(home, &args.object).await?;
    if args.json {
        let document =
            serde_json::to_string(&trace).map_err(|error| CliError::Failed(error.to_string()))?;
        println!("{document}");
    } else {
        print!("{}", trace_text(&trace));
    }
    Ok(EXIT_SUCCESS)
}
