//! Boot tests of the machine presets (`make run PRESET=<name>`, arguments in
//! `tests/presets/<name>.args`, expectation in `tests/presets/<name>.expect`):
//! on each machine the probes must keep and expunge exactly the project's
//! drivers listed here, each expunged one for exactly the reason given (the
//! sets were recorded from real boots under QEMU 7.2, TCG). A driver these
//! tests do not know (one a user added) is checked generically: it has a
//! result, a reason when expunged, no leak. With the preset's own
//! expectation nothing kept moves and no relocation is redone; with another
//! preset's expectation the sets are the same and modules do move.

use boot_tests::report::{module, names_with_result};
use boot_tests::{BootOutcome, QemuConfig, preset_image, presets, run_qemu};
use serde_json::Value;
use std::collections::BTreeMap;

const NO_IVRS: &str = "no IVRS table";
const NO_DMAR: &str = "no DMAR table";
const NO_BOCHS_VGA: &str = "no PCI device 1234:1111";
const NO_E1000: &str = "no PCI device 8086:100e";
const NO_NODEV: &str = "no PCI device 1d0f:feed";
const NO_UART: &str = "scratch register did not hold 0x5a (read 0xff)";
const NO_VIRTIO_BLK: &str = "no PCI device 1af4:1001 (virtio-blk)";
const NO_VIRTIO_NET: &str = "no PCI device 1af4:1000 (virtio-net)";

/// Boots `preset`'s machine with its own image (own expectation), checks
/// that nothing kept moved, and the generic per-module checks.
fn boot(preset: &str) -> (BootOutcome, Value) {
    let (out, report) = boot_image(preset, preset);
    for m in report["modules"].as_array().unwrap() {
        if m["result"] == "kept" {
            assert_eq!(
                m["bytes_moved"].as_u64(),
                Some(0),
                "{preset}: {} moved",
                m["name"]
            );
            assert_eq!(
                m["relocs_redone"].as_u64(),
                Some(0),
                "{preset}: {}",
                m["name"]
            );
        }
    }
    let p = &report["prediction"];
    assert_eq!(p["relocs_redone"].as_u64(), Some(0), "{preset}: {p}");
    (out, report)
}

/// Boots `machine`'s preset with the image prelinked for `image_of`'s
/// expectation.
fn boot_image(machine: &str, image_of: &str) -> (BootOutcome, Value) {
    let out = run_qemu(
        &QemuConfig::default()
            .image(preset_image(image_of))
            .preset(machine),
    );
    out.assert_passed();
    let report = out.expect_report();
    let preset = machine;
    for m in report["modules"].as_array().unwrap() {
        generic_module_checks(preset, m);
    }
    check_accounting(preset, &report);
    (out, report)
}

/// Asserts the exact kept set, the exact expunged set and every expunged
/// module's reason (all "no-device" failures) among the drivers listed;
/// any other module in the report is checked generically.
fn check(preset: &str, report: &Value, kept: &[&str], expunged: &[(&str, &str)]) {
    let known: Vec<&str> = kept
        .iter()
        .copied()
        .chain(expunged.iter().map(|e| e.0))
        .collect();
    let mut report = report.clone();
    let all = report["modules"].as_array().unwrap().clone();
    let (ours, others): (Vec<Value>, Vec<Value>) = all
        .into_iter()
        .partition(|m| known.contains(&m["name"].as_str().unwrap_or("")));
    for m in &others {
        generic_module_checks(preset, m);
    }
    let unknown_kept = others.iter().filter(|m| m["result"] == "kept").count();
    // Every kept driver of ours ran its self-test after the module phase,
    // at its final address, and passed: moved code, data and (for PCI
    // drivers) calls into the pci module all work.
    for m in ours.iter().filter(|m| m["result"] == "kept") {
        assert_eq!(
            m["selftest"], "passed",
            "{preset}: kept module {} selftest: {}",
            m["name"], m["selftest"]
        );
    }
    report["modules"] = Value::Array(ours);
    let report = &report;
    let mut want_kept: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
    want_kept.sort();
    assert_eq!(
        names_with_result(report, "kept"),
        want_kept,
        "{preset}: kept set"
    );
    let want_expunged: BTreeMap<String, String> = expunged
        .iter()
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect();
    let got_expunged: BTreeMap<String, String> = report["modules"]
        .as_array()
        .expect("modules list")
        .iter()
        .filter(|m| m["result"] == "expunged")
        .map(|m| {
            assert_eq!(m["reason_kind"], "no-device", "{preset}: {m}");
            (
                m["name"].as_str().unwrap().to_string(),
                m["reason"].as_str().unwrap_or("<no reason>").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got_expunged, want_expunged,
        "{preset}: expunged set and reasons"
    );
    let total = report["modules"].as_array().unwrap().len();
    assert_eq!(
        total,
        kept.len() + expunged.len(),
        "{preset}: modules neither kept nor expunged"
    );
    assert_eq!(
        report["kept"],
        kept.len() + unknown_kept,
        "{preset}: kept count"
    );
    assert_eq!(
        report["expunged"],
        expunged.len() + others.len() - unknown_kept,
        "{preset}: expunged count"
    );
}

/// What every module must satisfy, known to these tests or not.
fn generic_module_checks(preset: &str, m: &Value) {
    let name = &m["name"];
    match m["result"].as_str() {
        Some("kept") => {
            assert!(m["reason"].is_null(), "{preset}: {name}: {m}");
            let st = &m["selftest"];
            assert!(
                st.is_null() || st == "passed",
                "{preset}: {name} selftest: {st}"
            );
        }
        Some("expunged") => {
            assert!(
                m["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{preset}: {name}: {m}"
            );
            assert!(m["reason_kind"].is_string(), "{preset}: {name}: {m}");
            if !m["leak"].is_null() {
                for k in ["heap_bytes", "frames", "irqs"] {
                    assert_eq!(
                        m["leak"][k].as_i64(),
                        Some(0),
                        "{preset}: {name} leaked {k}"
                    );
                }
            }
        }
        r => panic!("{preset}: {name}: result {r:?}"),
    }
}

/// The accounting of every class adds up to its range, and nothing is W+X
/// or aliased.
fn check_accounting(preset: &str, report: &Value) {
    for c in report::CLASS_NAMES {
        let a = &report["accounting"][c];
        let sum: u64 = [
            "kernel", "kept", "failed", "padding", "freed", "pool", "heap",
        ]
        .iter()
        .map(|f| a[f].as_u64().unwrap_or_else(|| panic!("{preset}: {c}.{f}")))
        .sum();
        assert_eq!(Some(sum), a["size"].as_u64(), "{preset}: {c} accounting");
    }
    assert_eq!(report["wx_pages"].as_u64(), Some(0), "{preset}");
    assert_eq!(report["wx_alias_frames"].as_u64(), Some(0), "{preset}");
}

/// The kept and expunged sets and reasons of a report.
fn outcome(report: &Value) -> BTreeMap<String, (String, String)> {
    report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                (m["result"].to_string(), m["reason"].to_string()),
            )
        })
        .collect()
}

/// An image prelinked for one machine booted on another: the decisions are
/// the machine's, the prediction is wrong for some modules, and the loader
/// moves and relocates them, with every self-test passing at the final
/// address (checked in `boot_image`).
#[test]
fn wrong_expectation_moves_modules_and_stays_correct() {
    for (machine, image_of) in [("virtio", "pc"), ("pc", "virtio")] {
        let (_, own) = boot(machine);
        let (_, r) = boot_image(machine, image_of);
        assert_eq!(
            outcome(&r),
            outcome(&own),
            "{machine} with {image_of}'s expectation"
        );
        let p = &r["prediction"];
        let n = r["modules"].as_array().unwrap().len() as u64;
        assert!(p["as_expected"].as_u64().unwrap() < n, "{machine}: {p}");
        assert!(p["bytes_moved"].as_u64().unwrap() > 0, "{machine}: {p}");
        assert!(p["relocs_redone"].as_u64().unwrap() > 0, "{machine}: {p}");
        let own_p = &own["prediction"];
        assert_eq!(own_p["as_expected"].as_u64(), Some(n), "{machine}: {own_p}");
    }
}

/// Every preset file (tests/presets/*.args) has its boot test in this
/// file, `preset_<name>` (with `-` as `_`), and there is none for a preset
/// that does not exist.
#[test]
fn every_preset_has_a_test() {
    let source = include_str!("presets.rs");
    let presets = presets();
    assert!(!presets.is_empty());
    for p in &presets {
        let test = format!("fn preset_{}()", p.replace('-', "_"));
        assert!(source.contains(&test), "preset {p} has no `{test}` here");
    }
    let tests = source.matches("\nfn preset_").count();
    assert_eq!(
        tests,
        presets.len(),
        "a preset_ test for a preset that does not exist"
    );
}

#[test]
fn preset_pc() {
    let (_, report) = boot("pc");
    check(
        "pc",
        &report,
        &[
            "bochs_vga",
            "e1000",
            "hpet",
            "pci",
            "ps2",
            "rtc",
            "uart_com1",
        ],
        &[
            ("amd_iommu", NO_IVRS),
            ("intel_vtd", NO_DMAR),
            ("nodev", NO_NODEV),
            ("uart_com2", NO_UART),
            ("uart_com3", NO_UART),
            ("uart_com4", NO_UART),
            ("virtio_blk", NO_VIRTIO_BLK),
            ("virtio_net", NO_VIRTIO_NET),
        ],
    );
}

/// q35 with intel-iommu: VT-d is found through the DMAR table; q35's default
/// NIC is an e1000e (8086:10d3), which the e1000 driver does not claim.
#[test]
fn preset_q35_iommu() {
    let (out, report) = boot("q35-iommu");
    check(
        "q35-iommu",
        &report,
        &[
            "bochs_vga",
            "hpet",
            "intel_vtd",
            "pci",
            "ps2",
            "rtc",
            "uart_com1",
        ],
        &[
            ("amd_iommu", NO_IVRS),
            ("e1000", NO_E1000),
            ("nodev", NO_NODEV),
            ("uart_com2", NO_UART),
            ("uart_com3", NO_UART),
            ("uart_com4", NO_UART),
            ("virtio_blk", NO_VIRTIO_BLK),
            ("virtio_net", NO_VIRTIO_NET),
        ],
    );
    let vtd = out.line_with("intel_vtd: 1 DRHD unit(s)");
    assert!(vtd.is_some(), "no VT-d unit line: {}", out.describe());
}

#[test]
fn preset_virtio() {
    let (out, report) = boot("virtio");
    check(
        "virtio",
        &report,
        &[
            "bochs_vga",
            "hpet",
            "pci",
            "ps2",
            "rtc",
            "uart_com1",
            "virtio_blk",
            "virtio_net",
        ],
        &[
            ("amd_iommu", NO_IVRS),
            ("intel_vtd", NO_DMAR),
            ("e1000", NO_E1000),
            ("nodev", NO_NODEV),
            ("uart_com2", NO_UART),
            ("uart_com3", NO_UART),
            ("uart_com4", NO_UART),
        ],
    );
    // The 8 MiB raw disk of the preset.
    let blk = out.line_with("virtio_blk: 00:");
    assert!(
        blk.is_some_and(|l| l.contains("16384 sectors (8 MiB)")),
        "virtio-blk disk size: {}",
        out.describe()
    );
}

/// -nodefaults: no NIC and no VGA; the pc board's own devices (i8042, RTC,
/// HPET, PCI host bridge) and the one serial port the runner adds remain.
#[test]
fn preset_minimal() {
    let (_, report) = boot("minimal");
    check(
        "minimal",
        &report,
        &["hpet", "pci", "ps2", "rtc", "uart_com1"],
        &[
            ("amd_iommu", NO_IVRS),
            ("intel_vtd", NO_DMAR),
            ("bochs_vga", NO_BOCHS_VGA),
            ("e1000", NO_E1000),
            ("nodev", NO_NODEV),
            ("uart_com2", NO_UART),
            ("uart_com3", NO_UART),
            ("uart_com4", NO_UART),
            ("virtio_blk", NO_VIRTIO_BLK),
            ("virtio_net", NO_VIRTIO_NET),
        ],
    );
    assert_eq!(report["console"], "uart_com1");
}

/// A driver binds every device it matches, not only the first: three
/// e1000 NICs on the pc machine, each bound with its own MAC address read
/// from its EEPROM, and the self-test checks all three.
#[test]
fn every_matching_device_is_bound() {
    let out =
        run_qemu(&QemuConfig::for_preset("pc").args(["-device", "e1000", "-device", "e1000"]));
    out.assert_passed();
    let macs: std::collections::BTreeSet<&str> = out
        .serial
        .lines()
        .filter(|l| l.contains("[e1000] e1000: 00:"))
        .filter_map(|l| l.rsplit("eth e1000 ").next())
        .collect();
    assert_eq!(
        macs.len(),
        3,
        "three NICs with distinct MACs: {}",
        out.describe()
    );
    assert!(
        out.serial.contains("EEPROM MAC of 3 NIC(s) read again"),
        "{}",
        out.describe()
    );
    let r = out.expect_report();
    let m = module(&r, "e1000");
    assert_eq!(m["result"], "kept");
    assert_eq!(m["selftest"], "passed");
}
