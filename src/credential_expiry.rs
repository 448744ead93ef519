//! When the sync app's credential expires, and the warning an administrator gets from 30 days
//! before: in the dashboard, in `dirsync runs`, and in the service's log. An expired credential
//! stops every run, so the warning comes early enough to renew it calmly (the dashboard's
//! Connectors page renews it with a Global Administrator's sign-in; so does setup).

pub use crate::clock::{parse_rfc3339, rfc3339};

/// Warn from this many days before the credential expires.
pub const WARN_DAYS_BEFORE: i64 = 30;

/// Whole days left until `expires_at` (Unix seconds), counting a started day as a day; 0 or
/// less once it has expired.
pub fn days_left(expires_at: i64, now: i64) -> i64 {
    let day = 86_400;
    let left = expires_at - now;
    if left <= 0 { 0 } else { (left + day - 1) / day }
}

/// The warning for a credential that expires at `expires_at` (Unix seconds), seen at `now`:
/// `None` while more than [`WARN_DAYS_BEFORE`] days are left.
pub fn expiry_warning(expires_at: i64, now: i64) -> Option<String> {
    let left = expires_at - now;
    let day = 86_400;
    let date = rfc3339(expires_at);
    let date = date.split('T').next().unwrap_or_default();
    let renew =
        "renew it in the dashboard (Connectors, \"Renew credential…\") or by running setup again";
    if left <= 0 {
        Some(format!(
            "the sync app's credential expired on {date}: every run fails to sign in to the cloud until you {renew}"
        ))
    } else if left <= WARN_DAYS_BEFORE * day {
        let days = days_left(expires_at, now);
        Some(format!(
            "the sync app's credential expires on {date}, in {days} day{}: {renew}",
            if days == 1 { "" } else { "s" }
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn warns_from_thirty_days_before_and_after_expiry() {
        let expires = 1_900_000_000;
        assert_eq!(expiry_warning(expires, expires - 31 * DAY), None);
        let warning = expiry_warning(expires, expires - 30 * DAY).expect("warns");
        assert!(warning.contains("in 30 days"), "{warning}");
        assert!(warning.contains("2030-03-17"), "{warning}");
        let warning = expiry_warning(expires, expires - 3600).expect("warns");
        assert!(warning.contains("in 1 day:"), "{warning}");
        let warning = expiry_warning(expires, expires + 1).expect("warns");
        assert!(warning.contains("expired on"), "{warning}");
    }
}
