//! `dirsync setup`. (Being built in this branch.)

use super::{CliError, SetupArgs};
use crate::home::Home;

pub async fn run(_args: SetupArgs, _home: &Home) -> Result<u8, CliError> {
    Err(CliError::Failed("not built yet".to_owned()))
}
