//! `dirsync sync`. (Being built in this branch.)

use super::{CliError, SyncArgs};
use crate::home::Home;

pub async fn run(_args: SyncArgs, _home: &Home) -> Result<u8, CliError> {
    Err(CliError::Failed("not built yet".to_owned()))
}
