//! `dirsync match-group --dn DN --cloud-id ID`: the administrator confirms the match a run
//! proposed between an AD group and a cloud group dirsync did not create (README, "Joining").
//! Only the proposed cloud group can be confirmed; the next run joins it (and from then on
//! manages it: its properties and members follow AD, and it is deleted when the AD group goes).

use super::{CliError, EXIT_SUCCESS, MatchGroupArgs};
use crate::clock::now_ms;
use crate::home::Home;
use crate::store::StateStore;

pub fn run(args: &MatchGroupArgs, home: &Home) -> Result<u8, CliError> {
    let failed = |error: crate::store::StoreError| CliError::Failed(error.to_string());
    if !StateStore::exists(home) {
        return Err(CliError::BadInput(format!(
            "no run has proposed a group match yet ({} does not exist)",
            home.state_db.display()
        )));
    }
    let store = StateStore::open_home(home).map_err(failed)?;
    let Some((anchor, proposed)) = store.proposed_group_match(&args.dn).map_err(failed)? else {
        return Err(CliError::BadInput(format!(
            "--dn: no match is proposed for the group '{}': only a group a run reported as `group-not-ours` can be matched (check the DN in `dirsync runs show ID --kind errors`)",
            args.dn
        )));
    };
    if !proposed.eq_ignore_ascii_case(args.cloud_id.trim()) {
        return Err(CliError::BadInput(format!(
            "--cloud-id: the proposed cloud group for '{}' is {proposed}, not {}",
            args.dn, args.cloud_id
        )));
    }
    store
        .confirm_group_match(anchor, &proposed, now_ms())
        .map_err(failed)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "confirmed": { "dn": args.dn, "anchor": anchor.to_string(), "cloud_id": proposed } })
        );
    } else {
        println!(
            "Confirmed: the next run joins the cloud group {proposed} to {} (if it still has the group's mailNickname), and from then on writes it from AD.",
            args.dn
        );
    }
    Ok(EXIT_SUCCESS)
}
