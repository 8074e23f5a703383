//! Boot tests of the machine presets (`make run PRESET=<name>`, arguments in
//! `tests/presets/<name>.args`): on each machine the probes must keep and
//! expunge exactly the modules listed here, each expunged one for exactly the
//! reason given. The sets were recorded from real boots under QEMU 7.2 (TCG).

use boot_tests::report::names_with_result;
use boot_tests::{BootOutcome, QemuConfig, presets, run_qemu};
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

fn boot(preset: &str) -> (BootOutcome, Value) {
    let out = run_qemu(&QemuConfig::default().preset(preset));
    out.assert_passed();
    let report = out.expect_report();
    // Every kept driver ran its self-test after compaction, at the address
    // it was packed to, and passed: moved code, data and (for PCI drivers)
    // calls into the moved pci module all work.
    for m in report["modules"].as_array().unwrap() {
        if m["result"] == "kept" {
            assert_eq!(
                m["selftest"], "passed",
                "{preset}: kept module {} selftest: {}",
                m["name"], m["selftest"]
            );
        }
    }
    (out, report)
}

/// Asserts the exact kept set, the exact expunged set and every expunged
/// module's reason (all "no-device" failures).
fn check(preset: &str, report: &Value, kept: &[&str], expunged: &[(&str, &str)]) {
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
    assert_eq!(report["kept"], kept.len(), "{preset}: kept count");
    assert_eq!(
        report["expunged"],
        expunged.len(),
        "{preset}: expunged count"
    );
}

#[test]
fn every_preset_has_a_test() {
    assert_eq!(presets(), ["minimal", "pc", "q35-iommu", "virtio"]);
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
