//! `dirsync service`. (Being built in this branch.)

use super::CliError;
use crate::home::Home;

pub async fn run(_home: &Home) -> Result<u8, CliError> {
    Err(CliError::Failed("not built yet".to_owned()))
}
