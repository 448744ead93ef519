//! The Debian package (README, "Installing the package"), built by `packaging/build-deb` from
//! this build's binary, installed with `dpkg -i` on the test machine, looked at as an
//! administrator would, and purged. Needs root (the test machines run as root).
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../packaging/package_files.rs"]
mod package_files;

use std::path::Path;
use std::process::{Command, Output};

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Purges the package however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "dirsync"]).output();
    }
}

#[test]
fn the_package_installs_and_its_version_man_page_completions_and_unit_are_there() {
    let root = common::repository_root();
    let out = tempfile::tempdir().unwrap();
    let files = out.path().join("files");
    package_files::write_package_files(&files).unwrap();
    let built = run(Command::new(root.join("packaging/build-deb"))
        .args(["--binary", env!("CARGO_BIN_EXE_dirsync"), "--files"])
        .arg(&files)
        .arg("--out")
        .arg(out.path()));
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_owned();
    assert!(
        deb.ends_with("_amd64.deb") || deb.ends_with(".deb"),
        "{deb}"
    );
    let info = text(&run(Command::new("dpkg-deb").args(["--info", &deb])));
    assert!(info.contains("Package: dirsync"), "{info}");
    assert!(info.contains("Depends: libc6"), "{info}");

    let _installed = Installed;
    run(Command::new("dpkg").args(["-i", &deb]));

    let version = text(&run(Command::new("/usr/bin/dirsync").arg("--version")));
    assert!(
        version.starts_with(&format!("dirsync {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let man = text(&run(Command::new("man")
        .args(["-P", "cat", "dirsync"])
        .env("MANWIDTH", "100")));
    assert!(man.contains("dirsync"), "{man}");
    assert!(man.contains("Synchronizes"), "{man}");
    for file in [
        "/usr/share/bash-completion/completions/dirsync",
        "/usr/share/zsh/vendor-completions/_dirsync",
        "/usr/share/fish/vendor_completions.d/dirsync.fish",
        "/usr/share/icons/hicolor/256x256/apps/dirsync.png",
        "/usr/share/applications/dirsync.desktop",
        "/usr/share/dirsync/password-hash-sync.conf",
    ] {
        assert!(Path::new(file).exists(), "{file} is not installed");
    }
    let completion =
        std::fs::read_to_string("/usr/share/bash-completion/completions/dirsync").unwrap();
    assert!(
        completion.contains("trace"),
        "the completions know the commands"
    );
    // The service's user, made by the package.
    run(Command::new("getent").args(["passwd", "dirsync"]));

    // The unit as installed: systemd-analyze finds /usr/bin/dirsync and the user.
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "/lib/systemd/system/dirsync.service"])
        .output()
        .unwrap();
    let said = text(&verify);
    let about_the_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("dirsync"))
        .collect();
    assert!(
        verify.status.success() && about_the_unit.is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // Purged while still set up: the state directory, which names the service account and
    // the app, is kept (only `dirsync uninstall` removes those), and the purge says so.
    let state = Path::new("/var/lib/dirsync");
    let made_state = !state.exists();
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(state.join("config.toml"), "# set up\n").unwrap();
    let purged = run(Command::new("dpkg").args(["--purge", "dirsync"]));
    let said = text(&purged);
    assert!(said.contains("dirsync uninstall"), "{said}");
    assert!(state.join("config.toml").exists(), "kept while set up");
    if made_state {
        std::fs::remove_dir_all(state).unwrap();
    } else {
        std::fs::remove_file(state.join("config.toml")).unwrap();
    }

    // Purged: the binary and the user are gone.
    assert!(!Path::new("/usr/bin/dirsync").exists());
    assert!(
        !Command::new("getent")
            .args(["passwd", "dirsync"])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn the_icon_in_assets_is_the_one_the_code_draws() {
    let file = common::repository_root().join("assets/dirsync.png");
    let image = image::open(&file).unwrap().to_rgba8();
    assert_eq!(image.dimensions(), (256, 256));
    assert!(
        image.as_raw() == &dirsync::ui::icon::icon_rgba(256),
        "assets/dirsync.png is not what src/ui/icon.rs draws: run `cargo run --example package_files -- DIR` and copy DIR/dirsync.png there"
    );
}
