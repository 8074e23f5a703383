//! The loader verifies every module's bytes against the checksum the
//! prelinker recorded before it runs any of them: an image with one byte of
//! one module's text, rodata or data flipped must boot with that module
//! expunged for a checksum mismatch (and never probed), everything else as
//! usual. The checksum's block loop is SSE2 on QEMU's default CPU and AVX2
//! on `-cpu max` (which has it under TCG too); both are booted. Under the
//! compact policy a module that moves is checked where it lands, after
//! the move: an image linked without an expectation, where the victim
//! moves, is booted too.

use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The module whose text is corrupted: kept on the default machine, and no
/// other module depends on it.
const VICTIM: &str = "rtc";

/// The module after `VICTIM` in the table, which takes its place.
const NEXT: &str = "uart_com1";

fn prelinker() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("prelinker")
}

/// `prelinker inspect --json` of `image`.
fn inspect(image: &Path) -> Value {
    let out = Command::new(prelinker())
        .args(["inspect", "--json"])
        .arg(image)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e} (make image builds it)",
                prelinker().display()
            )
        });
    assert!(
        out.status.success(),
        "prelinker inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    b[at..at + n]
        .iter()
        .rev()
        .fold(0, |v, &x| v << 8 | u64::from(x))
}

/// File offset of virtual address `va` in a 64-bit little-endian ELF file,
/// from its PT_LOAD program headers.
fn file_offset(elf: &[u8], va: u64) -> u64 {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "64-bit little-endian ELF");
    let (phoff, phentsize, phnum) = (le(elf, 0x20, 8), le(elf, 0x36, 2), le(elf, 0x38, 2));
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&ph| le(elf, ph, 4) == 1)
        .find_map(|ph| {
            let (off, vaddr, filesz) =
                (le(elf, ph + 8, 8), le(elf, ph + 16, 8), le(elf, ph + 32, 8));
            (va >= vaddr && va < vaddr + filesz).then(|| off + (va - vaddr))
        })
        .unwrap_or_else(|| panic!("{va:#x} is in no loaded segment"))
}

/// Boots a copy of the image with one byte in the middle of `VICTIM`'s
/// class `class` flipped, and checks the module was expunged for it.
fn check_corrupted(class: &str) {
    let image = workspace_root().join("build").join("image.elf");
    let (m, _, _) = check_corrupted_on(&image, class, &[], "sse2");
    assert_eq!(m["bytes_moved"], 0, "nothing moves in the pc image: {m}");
}

/// [`check_corrupted`] on `image` with `qemu_args` added, checking that the
/// kernel said it checks with the block loop `simd`. Returns the REPORT
/// entries of the victim and of the module after it (`NEXT`), and the
/// REPORT.
fn check_corrupted_on(
    image: &Path,
    class: &str,
    qemu_args: &[&str],
    simd: &str,
) -> (Value, Value, Value) {
    let layout = inspect(image);
    let victim = layout["modules"]
        .as_array()
        .expect("modules list")
        .iter()
        .find(|m| m["name"] == VICTIM)
        .unwrap_or_else(|| panic!("{VICTIM} not in the image"));
    let bytes_of = &victim["classes"][class];
    let (addr, size) = (
        bytes_of["addr"].as_u64().unwrap(),
        bytes_of["size"].as_u64().unwrap(),
    );
    assert!(size > 0, "{VICTIM} has {class}");

    // Flip one byte in the middle of the module's class, in a copy.
    let mut bytes = std::fs::read(image).expect("reading the image");
    let at = file_offset(&bytes, addr + size / 2) as usize;
    bytes[at] ^= 0xff;
    // Tests run as threads of one process: the image's name keeps their
    // copies apart.
    let stem = image.file_stem().unwrap().to_string_lossy();
    let copy = std::env::temp_dir().join(format!(
        "plk-corrupt-{stem}-{class}-{simd}-{}.elf",
        std::process::id()
    ));
    std::fs::write(&copy, &bytes).expect("writing the corrupted copy");
    let out = run_qemu(
        &QemuConfig {
            image: copy.clone(),
            ..QemuConfig::default()
        }
        .args(qemu_args.iter().copied()),
    );
    let _ = std::fs::remove_file(&copy);

    out.assert_passed();
    let said = format!("simd: checksum blocks on {simd} ");
    assert!(
        out.serial.contains(&said),
        "no {said:?} in the log:\n{}",
        out.serial
    );
    let r = out.expect_report();
    let m = boot_tests::report::module(&r, VICTIM);
    assert_eq!(m["result"], "expunged", "{class}: {m}");
    assert_eq!(m["reason_kind"], "checksum", "{class}: {m}");
    let reason = m["reason"].as_str().unwrap();
    let stored = victim["checksum"].as_str().unwrap();
    let prefix = format!("checksum mismatch: table {stored}, bytes 0x");
    assert!(reason.starts_with(&prefix), "{reason:?} vs {prefix:?}");
    assert!(
        !reason.ends_with(stored),
        "bytes differ from the table: {reason}"
    );
    assert_eq!(m["probe_ns"].as_u64(), Some(0), "never probed: {m}");
    // The other modules are unaffected.
    for name in ["pci", "uart_com1", "e1000", "hpet"] {
        let k = r["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap();
        assert_eq!(k["result"], "kept", "{class}: {k}");
    }
    let next = boot_tests::report::module(&r, NEXT).clone();
    (m.clone(), next, r.clone())
}

#[test]
fn a_corrupted_module_is_expunged_for_its_checksum() {
    check_corrupted("text");
}

#[test]
fn a_corrupted_rodata_byte_is_caught_too() {
    check_corrupted("rodata");
}

#[test]
fn a_corrupted_data_byte_is_caught_too() {
    check_corrupted("data");
}

#[test]
fn the_avx2_loop_catches_a_corrupted_byte_too() {
    let image = workspace_root().join("build").join("image.elf");
    check_corrupted_on(&image, "text", &["-cpu", "max"], "avx2");
}

/// Without an expectation the modules after the first expunged one move
/// down, `VICTIM` among them: it is moved to the cursor first and checked
/// there, so its REPORT entry shows its bytes moved (0 if it had been
/// checked before the move), and the module after it, which overwrites
/// it, is kept and passes its self-test at its final address. At least one
/// kept module's move overlaps its own slot, so a kernel that checked the
/// slot after the move would expunge it: only the victim may fail its
/// checksum.
#[test]
fn a_module_that_moves_is_checked_where_it_lands() {
    let root = workspace_root();
    let image = std::env::temp_dir().join(format!("plk-noexpect-{}.elf", std::process::id()));
    let mut link = Command::new(prelinker());
    link.arg("link")
        .arg("--kernel")
        .arg(root.join("build").join("kernel.elf"))
        .arg("--output")
        .arg(&image);
    let mut objs: Vec<PathBuf> = std::fs::read_dir(root.join("build").join("modules"))
        .expect("build/modules (make image builds it)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objs.sort();
    let out = link.args(&objs).output().expect("running prelinker link");
    assert!(
        out.status.success(),
        "prelinker link failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (m, next, r) = check_corrupted_on(&image, "text", &[], "sse2");
    let _ = std::fs::remove_file(&image);
    assert_eq!(next["selftest"], "passed", "the module after it: {next}");
    assert!(next["bytes_moved"].as_u64() > Some(0), "{next}");
    let text = m["used"]["text"].as_u64().unwrap();
    assert!(text > 0, "{m}");
    assert!(
        m["bytes_moved"].as_u64() >= Some(text),
        "moved (its text at least) before it was checked: {m}"
    );
    let addr = |v: &Value| u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok();
    let report = &r["modules"];
    let overlapping = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["result"] == "kept")
        .filter(|k| {
            ["text", "rodata", "data"].iter().any(|c| {
                let (old, new) = (addr(&k["old_addr"][c]), addr(&k["new_addr"][c]));
                let used = k["used"][c].as_u64().unwrap();
                matches!((old, new), (Some(o), Some(n)) if n < o && o - n < used)
            })
        })
        .count();
    assert!(overlapping > 0, "no kept move overlaps its slot: {report}");
    for k in report.as_array().unwrap() {
        if k["name"] != VICTIM {
            assert_ne!(k["reason_kind"], "checksum", "{k}");
        }
    }
}
