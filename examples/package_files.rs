//! Writes the files the package carries that are made from the code (README, "Installing the
//! package"): the man page and shell completions from the CLI's definition, and the icon.
//! `cargo run --example package_files -- OUTDIR` (packaging/build-deb runs it).

use std::path::PathBuf;

use clap::CommandFactory as _;
use dirsync::cli::Cli;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: package_files OUTDIR")?,
    );
    std::fs::create_dir_all(&out)?;
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
