//! Passes the kernel linker script to the linker.
//!
//! `PLK_MODULE_EXTRA_PAGES=N` in the environment gives every class range N
//! more 2 MiB pages of module slot room (`MODULE_EXTRA_PAGES` in
//! `linker-scripts/kernel.ld`), for images with many modules;
//! `PLK_MODTABLE_KIB=N` reserves N KiB for the module table (`MODTABLE_SIZE`,
//! 256 KiB by default; a module needs about 1.2 KiB).

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
    // Always defined here, never in the script (see linker-scripts/kernel.ld).
    let extra = match std::env::var_os("PLK_MODULE_EXTRA_PAGES") {
        None => 0,
        Some(n) => n
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or_else(|| {
                panic!("PLK_MODULE_EXTRA_PAGES={n:?}: expected a number of 2 MiB pages")
            }),
    };
    let modtable_kib = match std::env::var_os("PLK_MODTABLE_KIB") {
        None => 256,
        Some(n) => n
            .to_str()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&k| (4..=1 << 20).contains(&k))
            .unwrap_or_else(|| {
                panic!("PLK_MODTABLE_KIB={n:?}: expected a module table size in KiB (4 to 1048576)")
            }),
    };
    println!("cargo:rustc-link-arg-bins=--defsym=MODULE_EXTRA_PAGES={extra}");
    println!(
        "cargo:rustc-link-arg-bins=--defsym=MODTABLE_SIZE={:#x}",
        modtable_kib * 1024
    );
    println!("cargo:rerun-if-env-changed=PLK_MODULE_EXTRA_PAGES");
    println!("cargo:rerun-if-env-changed=PLK_MODTABLE_KIB");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
}
