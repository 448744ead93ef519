//! Hybrid write-back against a forest whose schema lacks Exchange's attributes (the lab's base
//! Samba schema has only proxyAddresses): only proxyAddresses is written, and every run says
//! which attributes it skipped.
#![allow(clippy::unwrap_used)]

mod common;

use common::installation::*;
use common::lab;
use common::write_back::*;
use dirsync::directory::permissions::WRITE_BACK_ATTRIBUTES;
use serde_json::json;

#[test]
fn without_exchange_s_schema_only_proxy_addresses_is_written_and_the_rest_is_reported_skipped() {
    let lab = lab();
    grant_write_back_on_staging();
    let ou = TestOu::create("wbbase", &["fay"]);
    let install = Installation::new(&[&ou.dn], &[], write_back_on());
    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let fay = cloud_id(&install, &ou.upn("fay"));
    let legacy = legacy_dn(&format!("{fay}-fay"));
    install
        .tenant
        .set_mailbox(
            &fay,
            json!({
                "cloudLegacyExchangeDN": legacy,
                "cloudMSExchArchiveStatus": 1,
                "cloudMSExchSafeSendersHash": base64(&[1, 2, 3]),
                "cloudMSExchUCVoiceMailSettings": ["CsvEnabled=true"],
            }),
        )
        .unwrap();

    let (status, report) = install.sync(&[]);
    assert_eq!(status, 0, "skipping is no error: {report}");
    assert_eq!(report["run"]["status"], "success");
    let skipped: Vec<&str> = WRITE_BACK_ATTRIBUTES[1..].to_vec();
    assert_eq!(report["write_back"]["skipped"], json!(skipped));
    let warned: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| {
            assert!(
                warning["message"]
                    .as_str()
                    .unwrap()
                    .contains("hybrid write-back skips it"),
                "{warning}"
            );
            warning["attribute"].as_str().unwrap()
        })
        .collect();
    assert_eq!(warned, skipped);

    assert_eq!(
        ad_values(lab, &ou.user_dn("fay")),
        [(
            "proxyAddresses".to_owned(),
            vec![format!("SMTP:{}", ou.upn("fay")), format!("X500:{legacy}")]
        )]
        .into(),
        "only the X500 address is written"
    );
    let changes = write_back_changes(&report);
    assert_eq!(changes.len(), 1);
    let names: Vec<&str> = changes[0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attribute| attribute["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["proxyAddresses"]);

    // The text report says it too.
    let run = install.dirsync(&["sync"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("the forest's schema has no msExchArchiveStatus"),
        "{}",
        run.stdout
    );
}
