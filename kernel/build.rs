//! Passes the kernel linker script to the linker.
//!
//! `PLK_MODULE_EXTRA_PAGES=N` in the environment gives every class range N
//! more 2 MiB pages of module slot room (`MODULE_EXTRA_PAGES` in
//! `linker-scripts/kernel.ld`), for images with many modules.

use std::path::PathBuf;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let script = manifest
        .parent()
        .expect("kernel crate lives inside the workspace")
        .join("linker-scripts")
        .join("kernel.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    if let Some(n) = std::env::var_os("PLK_MODULE_EXTRA_PAGES") {
        let n = n
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or_else(|| {
                panic!("PLK_MODULE_EXTRA_PAGES={n:?}: expected a number of 2 MiB pages")
            });
        println!("cargo:rustc-link-arg-bins=--defsym=MODULE_EXTRA_PAGES={n}");
    }
    println!("cargo:rerun-if-env-changed=PLK_MODULE_EXTRA_PAGES");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
}
