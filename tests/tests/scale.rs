//! Boot test of a scale image (`make scale-image N=100`): 100 copies of the
//! template module tests/scale-module, each probing one bus-0 PCI slot
//! through the module API. One copy in ten drives an empty slot, so exactly
//! those are expunged, with the slot in the reason. The report's accounting
//! must cover every byte of every class range, with no page writable and
//! executable, and the module phase must be timed step by step.

use boot_tests::report::read_json;
use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;
use std::time::Duration;

/// The scale module's own statement of which slot each copy drives.
#[path = "../scale-module/src/plan.rs"]
mod plan;

const N: usize = 100;
const FAIL_EVERY: usize = plan::FAIL_EVERY as usize;

/// The slot copy `i` probes.
fn slot(i: usize) -> usize {
    plan::slot(i as u32) as usize
}

/// The size of section `name` of an ELF64 file.
fn section_size(elf: &[u8], name: &str) -> Option<u64> {
    let u = |at: usize, n: usize| -> Option<u64> {
        let b = elf.get(at..at + n)?;
        Some(b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64))
    };
    let (shoff, shnum, shstrndx) = (
        u(0x28, 8)? as usize,
        u(0x3c, 2)? as usize,
        u(0x3e, 2)? as usize,
    );
    let sh = |i: usize| shoff + 64 * i;
    let names = u(sh(shstrndx) + 0x18, 8)? as usize;
    (0..shnum).find_map(|i| {
        let at = names + u(sh(i), 4)? as usize;
        let n = elf.get(at..at + name.len() + 1)?;
        (n[..name.len()] == *name.as_bytes() && n[name.len()] == 0)
            .then(|| u(sh(i) + 0x20, 8))
            .flatten()
    })
}

fn num(v: &Value, what: &str) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{what}: {v}"))
}

#[test]
fn hundred_modules_decide_and_account_for_every_byte() {
    let build = workspace_root().join("build").join("scale");
    let image = build.join(format!("image-{N}.elf"));
    let out = run_qemu(
        &QemuConfig::default()
            .image(&image)
            .timeout(Duration::from_secs(120)),
    );
    out.assert_passed();
    let r = out.expect_report();
    let mods = r["modules"].as_array().expect("modules");
    assert_eq!(mods.len(), N);
    // The kernel was built with a module table sized for N
    // (PLK_MODTABLE_KIB, see the Makefile's scale-image).
    let elf = std::fs::read(&image).unwrap();
    assert_eq!(
        section_size(&elf, ".modtable"),
        Some((256 + N as u64 * 3 / 2) << 10),
        "the .modtable area of {}",
        image.display()
    );
    let plan = read_json(&build.join(format!("image-{N}.plan.json")));
    let planned = plan["modules"].as_array().expect("plan modules");
    assert_eq!(planned.len(), N);

    let (mut kept, mut phases) = (0, [0u64; 5]);
    for m in mods {
        let name = m["name"].as_str().unwrap();
        let i: usize = name
            .strip_prefix("scale_")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("module {name}"));
        let s = slot(i);
        if s < 4 {
            assert_eq!(m["result"], "kept", "{name} (slot {s}): {m}");
            assert_eq!(m["selftest"], "passed", "{name}: {m}");
            kept += 1;
        } else {
            assert_eq!(m["result"], "expunged", "{name} (slot {s}): {m}");
            assert_eq!(
                m["reason"],
                format!("no PCI function at 00:{s:02x}.0"),
                "{name}"
            );
            assert_eq!(m["reason_kind"], "no-device", "{name}");
        }
        // Every module was checksummed; every one after the first (which
        // fails) moved down to the packing cursor (a scale image has no
        // expectation).
        assert!(num(&m["checksum_ns"], "checksum_ns") > 0, "{name}: {m}");
        let moved = num(&m["bytes_moved"], "bytes_moved");
        assert_eq!(moved > 0, i > 0, "{name}: moved {moved}");
        if moved > 0 {
            assert!(num(&m["copy_ns"], "copy_ns") > 0, "{name}");
        }
        for (k, key) in ["checksum_ns", "copy_ns", "relocate_ns", "probe_ns"]
            .iter()
            .enumerate()
        {
            phases[k] += num(&m[*key], key);
        }
    }
    assert_eq!(kept, N - N / FAIL_EVERY);
    assert_eq!(num(&r["kept"], "kept") as usize, kept);
    for (k, key) in ["checksum_ns", "copy_ns", "relocate_ns", "probe_ns"]
        .iter()
        .enumerate()
    {
        assert_eq!(num(&r["phases"][key], key), phases[k], "phases.{key}");
    }
    assert!(num(&r["phases"]["remap_ns"], "remap_ns") > 0);

    for c in ["text", "rodata", "data"] {
        let a = &r["accounting"][c];
        let range: Vec<u64> = a["range"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
            .collect();
        let size = num(&a["size"], "size");
        assert_eq!(size, range[1] - range[0], "{c}: {a}");
        assert_eq!(
            range[0],
            num(&plan["regions"][c]["range"][0], "plan range"),
            "{c}"
        );
        let sum: u64 = [
            "kernel", "kept", "failed", "padding", "freed", "pool", "heap",
        ]
        .iter()
        .map(|k| num(&a[*k], k))
        .sum();
        assert_eq!(sum, size, "{c}: the accounting adds up to the range: {a}");
    }
    assert_eq!(num(&r["wx_pages"], "wx_pages"), 0);
    assert_eq!(num(&r["wx_alias_frames"], "wx_alias_frames"), 0);
}
