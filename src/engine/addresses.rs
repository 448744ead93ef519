//! An object's mail addresses as the planning stage reads them: the primary SMTP address, the
//! address of a proxy address, the mail nickname. Below both the attribute flow and validation,
//! which use them.

use crate::directory::objects::DirectoryObject;

/// The alias Exchange and Graph call mailNickname: the AD value, else the part before '@' of the
/// primary SMTP address, of mail, of the UPN (the README's order), else the sAMAccountName.
pub fn mail_nickname(object: &DirectoryObject) -> Option<String> {
    let local = |address: &str| {
        address
            .split_once('@')
            .map(|(local, _)| local.to_owned())
            .filter(|local| !local.is_empty())
    };
    object
        .first("mailNickname")
        .map(str::to_owned)
        .or_else(|| primary_smtp(object).and_then(local))
        .or_else(|| object.first("mail").and_then(local))
        .or_else(|| object.first("userPrincipalName").and_then(local))
        .or_else(|| object.first("sAMAccountName").map(str::to_owned))
}

/// The address of an SMTP proxy address (`SMTP:` primary or `smtp:` secondary), else `None`.
pub fn smtp_address(proxy_address: &str) -> Option<&str> {
    let prefix = proxy_address.get(..5)?;
    prefix
        .eq_ignore_ascii_case("smtp:")
        .then(|| &proxy_address[5..])
}

/// The primary SMTP address (the `SMTP:` proxy address, upper case prefix).
pub fn primary_smtp(object: &DirectoryObject) -> Option<&str> {
    object
        .values("proxyAddresses")
        .iter()
        .find_map(|address| address.strip_prefix("SMTP:"))
}
