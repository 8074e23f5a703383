//! Fault isolation: the test image (`make test-image`) adds modules whose
//! probes page-fault, divide by zero, execute an invalid opcode, panic, never
//! return, or acquire resources and then fail. Each must be expunged with
//! its own reason, boot must complete, and nothing may leak.

use boot_tests::report::names_with_result;
use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;

fn test_image_report() -> Value {
    let image = workspace_root().join("build").join("test-image.elf");
    let cfg = QemuConfig {
        image,
        ..QemuConfig::default()
    };
    let out = run_qemu(&cfg);
    out.assert_passed();
    out.expect_report()
}

fn module<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report"))
}

#[test]
fn faulting_probes_are_expunged_and_boot_goes_on() {
    let r = test_image_report();
    let cases = [
        ("fault_pagefault", "fault", "page fault (#PF) (vector 14)"),
        ("fault_divzero", "fault", "divide error (#DE) (vector 0)"),
        ("fault_ud", "fault", "invalid opcode (#UD) (vector 6)"),
        ("fault_panic", "panic", "panic: "),
        ("fault_hang", "hung", "hung: still running after 100 ms"),
        ("fault_leak", "io", "deliberate failure"),
    ];
    for (name, kind, text) in cases {
        let m = module(&r, name);
        assert_eq!(m["result"], "expunged", "{name}: {m}");
        assert_eq!(m["reason_kind"], kind, "{name}: {m}");
        let reason = m["reason"].as_str().unwrap();
        assert!(
            reason.contains(text),
            "{name}: reason {reason:?} lacks {text:?}"
        );
        for k in ["heap_bytes", "frames", "irqs"] {
            assert_eq!(
                m["leak"][k].as_i64(),
                Some(0),
                "{name} leaked {k}: {}",
                m["leak"]
            );
        }
    }
    // A module whose dependency was expunged is expunged unprobed.
    let dep = module(&r, "fault_dependent");
    assert_eq!(dep["result"], "expunged", "{dep}");
    assert_eq!(dep["reason"], "dependency fault_panic expunged");
    assert_eq!(dep["probe_ns"].as_u64(), Some(0), "never probed");
    assert!(dep["leak"].is_null() && dep["released"].is_null(), "{dep}");
    // The page fault names the address the probe touched.
    let pf = module(&r, "fault_pagefault")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pf.contains("address 0xffff900000000000"), "{pf}");
    // What fault_leak took was really released.
    let rel = &module(&r, "fault_leak")["released"];
    assert_eq!(rel["allocs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["alloc_bytes"].as_u64(), Some(65536), "{rel}");
    assert_eq!(rel["irqs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["ports"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["devices"].as_u64(), Some(1), "{rel}");
    // The real drivers after them were still probed and kept.
    let kept = names_with_result(&r, "kept");
    for name in ["pci", "uart_com1", "e1000"] {
        assert!(kept.iter().any(|k| k == name), "{name} not kept: {kept:?}");
    }
    assert_eq!(r["console"], "uart_com1");
    assert_eq!(r["wx_pages"].as_u64(), Some(0));
}

#[test]
fn probe_budget_is_settable() {
    let image = workspace_root().join("build").join("test-image.elf");
    let cfg = QemuConfig {
        image,
        ..QemuConfig::default()
    }
    .cmdline("probe_budget_ms=30");
    let out = run_qemu(&cfg);
    out.assert_passed();
    let r = out.expect_report();
    assert_eq!(r["probe_budget_ms"].as_u64(), Some(30));
    let hang = module(&r, "fault_hang");
    assert_eq!(hang["reason"], "hung: still running after 30 ms");
    // The cut-off happened at the budget, not long after (TSC-timed; 1 ms ticks).
    let ns = hang["probe_ns"].as_u64().unwrap();
    assert!(
        (30_000_000..200_000_000).contains(&ns),
        "hang probe took {ns} ns"
    );
}
