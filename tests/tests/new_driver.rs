//! `make new-driver NAME=...` end to end, in a temporary copy of the tree
//! (the files `git ls-files` lists, tracked or not ignored, as they are in
//! the working tree): build and boot the copy as it is (the baseline), then
//! scaffold a driver, rebuild and boot again. The template's PCI id matches no
//! emulated device, so the new module must be expunged with "no PCI device
//! 1d0f:0bad". It is not in the preset's expectation, so the prelinker puts
//! it after the expected-kept modules and the kernel probes it where it
//! lies: its slot bytes end up in the trap-filled pool (text, rodata) or the
//! heap tail (data), and the accounting of every class range is exactly the
//! baseline's. Then the copy's own preset boot tests run with the new
//! driver present.
//!
//! The copy builds into its own `target/` (about a minute from scratch) so
//! that it never overwrites the artifacts of the real workspace, which other
//! builds may be using at the same time.

use boot_tests::report::{addr, module, names_with_result};
use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "scaffolded_drv";
const REASON: &str = "no PCI device 1d0f:0bad";
use report::CLASS_NAMES as CLASSES;

/// A temporary directory removed on drop (kept if `PLK_KEEP_TMP` is set).
struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        if std::env::var_os("PLK_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Copies the workspace's source files (tracked, or untracked and not
/// ignored) into a fresh temporary directory, keeping modification times.
fn copy_tree() -> TempTree {
    let root = workspace_root();
    let dir = std::env::temp_dir().join(format!("plk-new-driver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tree = TempTree(dir);
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .expect("running git ls-files");
    assert!(out.status.success(), "git ls-files failed: {out:?}");
    let mut n = 0;
    for rel in out.stdout.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 path"));
        let from = root.join(rel);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = tree.0.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        let mtime = std::fs::metadata(&from).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&to)
            .and_then(|f| f.set_modified(mtime))
            .unwrap();
        n += 1;
    }
    assert!(n > 50, "only {n} files copied");
    tree
}

/// Runs `make <args>` in `dir`, panicking with its output on failure;
/// returns stdout and stderr.
fn make(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("make")
        .args(args)
        .current_dir(dir)
        // Build in the copy's own target/ with the Makefile's defaults.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("PRESET")
        .output()
        .expect("running make");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "make {args:?} in {} failed:\n{text}",
        dir.display()
    );
    text
}

fn boot(image: &Path) -> Value {
    let out = run_qemu(&QemuConfig {
        image: image.to_path_buf(),
        ..QemuConfig::default()
    });
    out.assert_passed();
    out.expect_report()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn scaffolded_driver_is_expunged_and_reclaimed() {
    let tree = copy_tree();
    let dir = &tree.0;
    let image = dir.join("build").join("image.elf");

    make(dir, &["image"]);
    let before = boot(&image);

    // Bad names are refused, a good one scaffolded.
    for bad in ["Foo", "1abc", "a-b", "nodev", "kernel"] {
        let st = Command::new("make")
            .args(["new-driver", &format!("NAME={bad}")])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(!st.status.success(), "NAME={bad} was accepted");
        assert!(String::from_utf8_lossy(&st.stderr).contains("error:"));
    }
    let out = make(dir, &["new-driver", &format!("NAME={NAME}")]);
    assert!(
        out.contains(&format!("created builtin-modules/{NAME}")),
        "{out}"
    );
    let src =
        std::fs::read_to_string(dir.join(format!("builtin-modules/{NAME}/src/lib.rs"))).unwrap();
    for needle in [
        "#![no_std]",
        "#![forbid(unsafe_code)]",
        &format!("name: \"{NAME}\""),
        "const VENDOR: u16 = 0x1d0f;",
        "const DEVICE: u16 = 0x0bad;",
    ] {
        assert!(
            src.contains(needle),
            "generated lib.rs lacks {needle}:\n{src}"
        );
    }
    assert!(!src.contains("__NAME__"), "placeholder left in:\n{src}");

    let out = make(dir, &["image"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("modules:") && l.split_whitespace().any(|w| w == NAME)),
        "{NAME} not among the built modules:\n{out}"
    );
    let after = boot(&image);

    // The new module failed its probe, for the template's reason.
    let m = module(&after, NAME);
    assert_eq!(m["result"], "expunged", "{m}");
    assert_eq!(m["reason"], REASON, "{m}");
    assert_eq!(m["reason_kind"], "no-device", "{m}");
    assert_eq!(m["depends"], serde_json::json!(["pci"]));

    // Nothing else changed: same kept set, one more expunged module.
    assert_eq!(
        names_with_result(&after, "kept"),
        names_with_result(&before, "kept")
    );
    let mut exp = names_with_result(&before, "expunged");
    exp.push(NAME.to_string());
    exp.sort();
    assert_eq!(names_with_result(&after, "expunged"), exp);

    // Expected to fail, it was probed in its slot and nothing moved.
    assert_eq!(m["predicted"], "expunged", "{m}");
    assert_eq!(
        after["prediction"]["bytes_moved"], 0,
        "{}",
        after["prediction"]
    );
    // Its slots lie past the live end, in the pool (text, rodata) or the
    // heap tail (data) of their class range, and every class is accounted
    // for exactly as before it existed.
    for c in CLASSES {
        let slot = u(&m["slot"][c]);
        if slot > 0 {
            let at = addr(&m["old_addr"][c]);
            let tail = &after["regions"][c][if c == "data" { "heap" } else { "pool" }];
            assert!(
                addr(&tail[0]) <= at && at + slot <= addr(&tail[1]),
                "{c}: slot {at:#x}+{slot:#x} not in the tail {tail}"
            );
        }
        assert_eq!(
            after["accounting"][c], before["accounting"][c],
            "{c}: accounting changed"
        );
    }
    assert!(u(&m["slot"]["text"]) > 0, "{m}");
    assert_eq!(u(&after["expunged"]), u(&before["expunged"]) + 1);

    // The copy's own preset boot tests pass with the new driver present.
    make(dir, &["preset-images"]);
    let out = Command::new(env!("CARGO"))
        .args(["test", "-p", "boot-tests", "--test", "presets"])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running cargo test in the copy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the preset tests failed in the copy with {NAME} present:\n{text}"
    );
    assert!(
        text.contains("test preset_pc ... ok") && text.contains("test result: ok"),
        "{text}"
    );
}
