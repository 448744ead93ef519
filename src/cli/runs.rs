//! `dirsync runs`. (Being built in this branch.)

use super::{CliError, RunsArgs};
use crate::home::Home;

pub fn run(_args: RunsArgs, _home: &Home) -> Result<u8, CliError> {
    Err(CliError::Failed("not built yet".to_owned()))
}
