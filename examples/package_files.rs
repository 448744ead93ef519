//! Writes the files the package carries that are made from the code (README, "Installing the
//! package"): `cargo run --example package_files -- OUTDIR` (packaging/build-deb runs it).

#[path = "../packaging/package_files.rs"]
mod package_files;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: package_files OUTDIR")?;
    package_files::write_package_files(std::path::Path::new(&out))
}
