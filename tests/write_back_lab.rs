//! Hybrid Exchange write-back end to end (README, "Hybrid Exchange write-back"), on the lab whose schema has Exchange's
//! attributes (`tests/lab/lab up --exchange-schema`) and a tenant emulator: a mailbox attribute
//! changed in the tenant reaches AD after one cycle, read back with `ldapsearch`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::installation::*;
use common::write_back::*;
use common::{Lab, lab_with};
use dirsync::config::{Config, SyncOptions};
use serde_json::{Value, json};
use tenant_emulator::EmulatorConfig;

/// This binary's lab: the extended schema.
fn exchange_lab() -> &'static Lab {
    lab_with(&["--exchange-schema"])
}

#[test]
fn mailbox_attributes_reach_ad_once_and_never_come_back_as_changes() {
    let lab = exchange_lab();
    grant_write_back_on_staging();
    let ou = TestOu::create("wb", &["ann", "ben"]);
    let install = Installation::new(&[&ou.dn], &[], write_back_on());
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let ann = cloud_id(&install, &ou.upn("ann"));
    let smtp = format!("SMTP:{}", ou.upn("ann"));

    // Exchange Online gives ann a mailbox with every write-back attribute.
    let first_dn = legacy_dn(&format!("{ann}-ann"));
    let safe_senders: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    install
        .tenant
        .set_mailbox(
            &ann,
            json!({
                "cloudLegacyExchangeDN": first_dn,
                "cloudMSExchArchiveStatus": 1,
                "cloudMSExchSafeSendersHash": base64(&safe_senders),
                "cloudMSExchBlockedSendersHash": base64(&[0xde, 0xad, 0xbe, 0xef]),
                "cloudMSExchSafeRecipientsHash": base64(&[1, 2, 3, 4]),
                "cloudMSExchUCVoiceMailSettings": ["CsvEnabled=true", "MWIEnabled=true"],
            }),
        )
        .unwrap();
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["run"]["status"], "success", "{report}");
    assert_eq!(counters(&report, "cloud-import").1, 1, "one mailbox read");
    assert_eq!(counters(&report, "write-back-export"), (0, 1, 0, 0));
    assert_eq!(report["write_back"]["skipped"], json!([]));

    let held = ad_values(lab, &ou.user_dn("ann"));
    assert_eq!(
        held["proxyAddresses"],
        [smtp.clone(), format!("X500:{first_dn}")],
        "the X500 address is added beside the SMTP address"
    );
    assert_eq!(held["msExchArchiveStatus"], ["1"]);
    assert_eq!(held["msExchSafeSendersHash"], [base64(&safe_senders)]);
    assert_eq!(
        held["msExchBlockedSendersHash"],
        [base64(&[0xde, 0xad, 0xbe, 0xef])]
    );
    assert_eq!(held["msExchSafeRecipientsHash"], [base64(&[1, 2, 3, 4])]);
    let mut voice_mail = held["msExchUCVoiceMailSettings"].clone();
    voice_mail.sort();
    assert_eq!(voice_mail, ["CsvEnabled=true", "MWIEnabled=true"]);
    // Ben has no cloud mailbox: untouched.
    assert_eq!(
        ad_values(lab, &ou.user_dn("ben")),
        BTreeMap::from([(
            "proxyAddresses".to_owned(),
            vec![format!("SMTP:{}", ou.upn("ben"))]
        )])
    );

    // The run records the change with old and new values.
    let changes = write_back_changes(&report);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["dn"], ou.user_dn("ann"));
    assert_eq!(changes[0]["change_kind"], "update");
    let attribute = |name: &str| -> &Value {
        changes[0]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {}", changes[0]))
    };
    assert_eq!(attribute("proxyAddresses")["old"], json!([smtp]));
    assert_eq!(
        attribute("proxyAddresses")["new"],
        json!([smtp, format!("X500:{first_dn}")])
    );
    assert_eq!(attribute("msExchArchiveStatus")["old"], Value::Null);
    assert_eq!(attribute("msExchArchiveStatus")["new"], "1");
    let shown = install.runs_show(run_id(&report), None);
    assert!(shown.to_string().contains("write-back-export"), "{shown}");

    // The next cycle reads ann's changed entry back from AD, and neither exports it to the cloud
    // nor writes it back again.
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (adds, updates, _, errors) = counters(&report, "cloud-export");
    assert_eq!((adds, updates, errors), (0, 0, 0), "{report}");
    assert_eq!(counters(&report, "write-back-export").1, 0, "{report}");
    assert!(write_back_changes(&report).is_empty());

    // The cloud changes its mind: a new safe senders list, no archive, a new legacyExchangeDN.
    let second_dn = legacy_dn(&format!("{ann}-ann-moved"));
    install
        .tenant
        .set_mailbox(
            &ann,
            json!({
                "cloudLegacyExchangeDN": second_dn,
                "cloudMSExchArchiveStatus": null,
                "cloudMSExchSafeSendersHash": base64(&[9, 9, 9]),
            }),
        )
        .unwrap();
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(counters(&report, "write-back-export").1, 1, "{report}");
    let held = ad_values(lab, &ou.user_dn("ann"));
    let proxies = &held["proxyAddresses"];
    assert_eq!(
        proxies,
        &[
            smtp.clone(),
            format!("X500:{first_dn}"),
            format!("X500:{second_dn}")
        ],
        "the new X500 address is added; the earlier one stays so old replies still arrive"
    );
    assert!(
        !held.contains_key("msExchArchiveStatus"),
        "cleared: {held:?}"
    );
    assert_eq!(held["msExchSafeSendersHash"], [base64(&[9, 9, 9])]);

    // Write-back turned off: the cycle stops writing back; the values written stay.
    let mut config = Config::load(&install.config_path()).unwrap();
    config.options.hybrid_write_back = false;
    config.save(&install.config_path()).unwrap();
    install
        .tenant
        .set_mailbox(&ann, json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert!(
        report["run"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["step"] != "write-back-export"),
        "{report}"
    );
    assert_eq!(ad_values(lab, &ou.user_dn("ann")), held);
}

#[test]
fn a_value_ad_refuses_is_the_user_s_error_naming_the_attribute_and_the_rest_is_written() {
    let lab = exchange_lab();
    grant_write_back_on_staging();
    let ou = TestOu::create("wbbig", &["cat"]);
    let install = Installation::new(&[&ou.dn], &[], write_back_on());
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let cat = cloud_id(&install, &ou.upn("cat"));
    // The blocked senders hash holds at most 4,000 bytes in Exchange's schema.
    install
        .tenant
        .set_mailbox(
            &cat,
            json!({
                "cloudMSExchArchiveStatus": 1,
                "cloudMSExchBlockedSendersHash": base64(&[7u8; 5000]),
            }),
        )
        .unwrap();

    let (_, report) = install.sync(&[]);
    assert_eq!(report["run"]["status"], "completed-with-errors", "{report}");
    assert_eq!(counters(&report, "write-back-export"), (0, 1, 0, 1));
    let errors = errors_of(&report, &ou.user_dn("cat"));
    assert_eq!(errors.len(), 1, "{report}");
    let error = errors[0];
    assert_eq!(error["error_type"], "write-back-refused");
    assert_eq!(error["code"], "msExchBlockedSendersHash");
    assert!(
        error["server_message"]
            .as_str()
            .unwrap()
            .contains("msExchBlockedSendersHash"),
        "{error}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("msExchBlockedSendersHash")
    );
    assert_eq!(error["retry_count"], 0);
    let held = ad_values(lab, &ou.user_dn("cat"));
    assert_eq!(held["msExchArchiveStatus"], ["1"], "the rest is written");
    assert!(!held.contains_key("msExchBlockedSendersHash"));

    // Tried again next cycle, and counted as a retry.
    let (_, report) = install.sync(&[]);
    let errors = errors_of(&report, &ou.user_dn("cat"));
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["retry_count"], 1);
    assert_eq!(errors[0]["first_occurred_at"], error["first_occurred_at"]);

    // Exchange Online fixes the value: the error goes.
    install
        .tenant
        .set_mailbox(
            &cat,
            json!({"cloudMSExchBlockedSendersHash": base64(&[7u8; 40])}),
        )
        .unwrap();
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert!(errors_of(&report, &ou.user_dn("cat")).is_empty());
    assert_eq!(
        ad_values(lab, &ou.user_dn("cat"))["msExchBlockedSendersHash"],
        [base64(&[7u8; 40])]
    );
}

#[test]
fn a_write_the_service_account_has_no_right_to_names_the_missing_right() {
    let lab = exchange_lab();
    grant_write_back_on_staging();
    // An OU outside OU=Staging, where the grant does not reach.
    let tag = unique("wbdeny");
    let ou = format!("OU={tag},{}", lab.base_dn);
    let user_dn = format!("CN=dan,{ou}");
    ldapmodify(
        lab,
        &format!(
            "dn: {ou}\nchangetype: add\nobjectClass: organizationalUnit\n\n{}",
            user_ldif(&ou, &tag, "dan")
        ),
    );
    let install = Installation::new(&[&ou], &[], write_back_on());
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let dan = cloud_id(&install, &format!("dan.{tag}@contoso.test"));
    install
        .tenant
        .set_mailbox(&dan, json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();

    let (_, report) = install.sync(&[]);
    assert_eq!(report["run"]["status"], "completed-with-errors", "{report}");
    let errors = errors_of(&report, &user_dn);
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["error_type"], "write-back-denied");
    assert_eq!(errors[0]["code"], "msExchArchiveStatus");
    let message = errors[0]["server_message"].as_str().unwrap();
    assert!(
        message.contains("Write Property right on msExchArchiveStatus"),
        "{message}"
    );
    assert!(
        errors[0]["hint"]
            .as_str()
            .unwrap()
            .contains("hybrid write-back on")
    );
    assert!(!ad_values(lab, &user_dn).contains_key("msExchArchiveStatus"));
}

#[test]
fn a_tenant_without_mailboxes_is_the_run_s_error_and_the_sync_goes_on() {
    let _ = exchange_lab();
    let ou = TestOu::create("wbnone", &["eve"]);
    let install = Installation::with_tenant(
        &[&ou.dn],
        &[],
        write_back_on(),
        EmulatorConfig {
            mailbox_endpoint: false,
            ..EmulatorConfig::default()
        },
    );
    let (status, report) = install.sync(&[]);
    assert_eq!(report["run"]["status"], "completed-with-errors", "{report}");
    assert_ne!(status, 0);
    assert!(user_with_upn(&install.cloud_users(), &ou.upn("eve")).is_some());
    let errors = errors_of(&report, "");
    let unavailable: Vec<_> = errors
        .iter()
        .filter(|error| error["error_type"] == "write-back-unavailable")
        .collect();
    assert_eq!(unavailable.len(), 1, "{report}");
    let message = unavailable[0]["server_message"].as_str().unwrap();
    assert!(message.contains("public Microsoft Graph"), "{message}");
    assert!(
        report["run"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["step"] != "write-back-export")
    );
}

#[test]
fn idfix_target_address_rules_read_the_exchange_attribute() {
    // `dirsync check` (README, "Checking the directory before syncing") on this binary's forest,
    // the one with Exchange's targetAddress: two mail users of a hybrid, one's targetAddress the
    // other's address, one's no SMTP address at all.
    let lab = exchange_lab();
    let ou = TestOu::create("cht", &["una", "vic"]);
    ldapmodify(
        lab,
        &format!(
            "dn: {una}\nchangetype: modify\nreplace: targetAddress\ntargetAddress: SMTP:{vic_address}\n\ndn: {vic}\nchangetype: modify\nreplace: targetAddress\ntargetAddress: X400:c=US;a= ;p=Contoso\n\n",
            una = ou.user_dn("una"),
            vic = ou.user_dn("vic"),
            vic_address = ou.upn("vic"),
        ),
    );
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let run = installation.dirsync(&["check", "--json"]);
    assert_eq!(run.status, 3, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["dn"].as_str().unwrap().to_owned(),
                finding["attribute"].as_str().unwrap().to_owned(),
                finding["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                ou.user_dn("una"),
                "targetAddress".to_owned(),
                "duplicate".to_owned()
            ),
            (
                ou.user_dn("vic"),
                "targetAddress".to_owned(),
                "not-an-address".to_owned()
            ),
        ],
        "{report:#}"
    );
}
