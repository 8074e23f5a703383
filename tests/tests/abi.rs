//! The module ABI is checked at link time on the real objects: a module
//! that imports `pci_find_device` with another signature than the `pci`
//! module exports is refused naming the module, the symbol and both
//! signatures; so is a module whose `.modinfo` claims another ABI version.
//! Nothing is written either time. (`make refusal-modules` builds the
//! refused module; `make test` runs it first.)

use boot_tests::workspace_root;
use modabi::modinfo;
use std::path::{Path, PathBuf};
use std::process::Command;

fn build() -> PathBuf {
    workspace_root().join("build")
}

fn prelinker() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("prelinker")
}

/// The real module objects, in name order.
fn modules() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(build().join("modules"))
        .expect("build/modules (run `make modules`)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    v
}

/// Links the kernel with `objects` into a temporary directory; returns the
/// exit status, stderr, and whether an image was left behind.
fn link(objects: &[PathBuf]) -> (Option<i32>, String, bool) {
    let dir = tempfile_dir();
    let out = dir.join("image.elf");
    let r = Command::new(prelinker())
        .arg("link")
        .arg("--kernel")
        .arg(build().join("kernel.elf"))
        .arg("--output")
        .arg(&out)
        .args(objects)
        .output()
        .expect("running the prelinker (run `make prelinker`)");
    let left = out.exists();
    let _ = std::fs::remove_dir_all(&dir);
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
        left,
    )
}

fn tempfile_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "plk-abi-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_real_modules_link() {
    let (code, stderr, left) = link(&modules());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(left);
}

#[test]
fn an_import_with_another_signature_is_refused() {
    let bad = build().join("refusals").join("wrong_signature.o");
    assert!(
        bad.is_file(),
        "{} missing: run `make refusal-modules`",
        bad.display()
    );
    let mut objects = modules();
    objects.push(bad);
    let (code, stderr, left) = link(&objects);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!left, "an image was written");
    for want in [
        "wrong_signature.o",
        "module `wrong_signature` imports `pci_find_device` as `fn(u16, u16, u16, &mut PciDevice) -> bool`",
        "module `pci`",
        "exports `fn(u16, u16, u32, &mut PciDevice) -> bool`",
    ] {
        assert!(stderr.contains(want), "`{want}` missing from: {stderr}");
    }
}

/// Replaces the first `from` in the file's bytes with `to` (same length).
fn patched(src: &Path, from: &[u8], to: &[u8], dir: &Path) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(src).unwrap();
    let at = b
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{} has no {:?}", src.display(), from));
    b[at..at + to.len()].copy_from_slice(to);
    let out = dir.join(src.file_name().unwrap());
    std::fs::write(&out, b).unwrap();
    out
}

#[test]
fn a_module_of_another_abi_version_is_refused() {
    let dir = tempfile_dir();
    let objects: Vec<PathBuf> = modules()
        .into_iter()
        .map(|m| {
            if m.file_name().unwrap() == "rtc.o" {
                // Another version of the same width, so the section keeps
                // its size.
                let other = modinfo::ABI_ENTRY.replace(&modinfo::ABI_VERSION.to_string(), "7");
                assert_ne!(other, modinfo::ABI_ENTRY);
                patched(&m, modinfo::ABI_ENTRY.as_bytes(), other.as_bytes(), &dir)
            } else {
                m
            }
        })
        .collect();
    let (code, stderr, left) = link(&objects);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!left);
    assert!(
        stderr.contains("rtc.o") && stderr.contains("module ABI version 7"),
        "{stderr}"
    );
}
