//! The files the package carries that are made from the code (README, "Installing the
//! package"): the man page and shell completions from the CLI's definition, and the icon. Shared
//! by `examples/package_files.rs` (which packaging/build-deb runs) and the package test.

use std::path::Path;

use clap::CommandFactory as _;
use dirsync::cli::Cli;

/// Writes `dirsync.1`, `dirsync.bash`, `_dirsync`, `dirsync.fish` and `dirsync.png` into `out`.
pub fn write_package_files(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let command = Cli::command();

    let mut man = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut man)?;
    std::fs::write(out.join("dirsync.1"), man)?;

    for (shell, file) in [
        (clap_complete::Shell::Bash, "dirsync.bash"),
        (clap_complete::Shell::Zsh, "_dirsync"),
        (clap_complete::Shell::Fish, "dirsync.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command.clone(), "dirsync", &mut script);
        std::fs::write(out.join(file), script)?;
    }

    let size = 256;
    image::RgbaImage::from_raw(size, size, dirsync::ui::icon::icon_rgba(size))
        .ok_or("the icon's size")?
        .save(out.join("dirsync.png"))?;
    Ok(())
}
