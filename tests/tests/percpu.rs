//! Modules' per-CPU data: the test image booted at 1, 2 and 4 CPUs. The
//! drivers with per-CPU state (e1000, the UARTs) pass their self-tests,
//! which check on every CPU that its copy is its own; the kernel's
//! per-CPU figures equal what this test computes from the prelinker's
//! plan and the kept set; `fault_percpu` is expunged with no leak and its
//! copies are counted as freed.

use boot_tests::report::read_json;
use boot_tests::{QemuConfig, run_qemu, workspace_root};
use serde_json::Value;

fn plan_percpu() -> Vec<(String, u64)> {
    let plan = read_json(&workspace_root().join("build").join("test-plan.json"));
    plan["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["percpu"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn packed(v: u64) -> u64 {
    v.div_ceil(64) * 64
}

fn check(cpus: u32) {
    let out = run_qemu(
        &QemuConfig {
            image: workspace_root().join("build").join("test-image.elf"),
            ..QemuConfig::default()
        }
        .smp(cpus),
    );
    // fault_selftest and fault_irq_owner degrade the test image's boot.
    out.assert_degraded();
    let r: Value = out.expect_report();
    let plan = plan_percpu();
    let module = |name: &str| boot_tests::report::module(&r, name).clone();
    for name in ["e1000", "uart_com1"] {
        let m = module(name);
        assert_eq!(m["result"], "kept", "{name}: {m}");
        assert_eq!(m["selftest"], "passed", "{name}: {m}");
        let want = format!("own count on each of {cpus} CPU(s)");
        let want_uart = format!("is its own on each of {cpus} CPU(s)");
        assert!(
            out.line_with(&format!("[{name}]")).is_some()
                && (out.kernel_output().contains(&want)
                    || out.kernel_output().contains(&want_uart)),
            "{name}: no per-CPU self-test line for {cpus} CPUs"
        );
    }
    let p = &r["percpu"];
    let (mut module_bytes, mut freed) = (0, 0);
    for (name, bytes) in &plan {
        let m = module(name);
        assert_eq!(m["percpu"].as_u64(), Some(packed(*bytes)), "{name}: {m}");
        if m["result"] == "kept" {
            module_bytes += packed(*bytes);
        } else if m["reason_kind"] != "dependency" && m["reason_kind"] != "checksum" {
            freed += packed(*bytes) * cpus as u64;
        }
    }
    assert!(module_bytes > 0, "no kept module has per-CPU data");
    assert_eq!(p["cpus"].as_u64(), Some(cpus as u64), "{p}");
    assert_eq!(p["module_bytes"].as_u64(), Some(module_bytes), "{p}");
    let kernel = p["kernel_bytes"].as_u64().unwrap();
    assert!(kernel > 0 && kernel.is_multiple_of(64), "{p}");
    let area = p["per_cpu_area_bytes"].as_u64().unwrap();
    assert_eq!(area, kernel + module_bytes, "{p}");
    assert_eq!(p["total_bytes"].as_u64(), Some(cpus as u64 * area), "{p}");
    assert_eq!(p["freed_bytes"].as_u64(), Some(freed), "{p}");
    let c = &r["percpu_compare"];
    assert_eq!(c["exact_bytes"].as_u64(), Some(module_bytes * cpus as u64));
    assert_eq!(c["reserve_8k_bytes"].as_u64(), Some(8192 * cpus as u64));
    assert_eq!(
        c["reserve_32k_bytes"].as_u64(),
        Some((32768 - kernel) * cpus as u64)
    );

    let f = module("fault_percpu");
    assert_eq!(f["result"], "expunged", "{f}");
    assert!(
        f["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("writing per-CPU data on {cpus} CPU(s)")),
        "{f}"
    );
    for k in ["heap_bytes", "frames", "irqs"] {
        assert_eq!(
            f["leak"][k].as_i64(),
            Some(0),
            "fault_percpu leaked {k}: {f}"
        );
    }
    assert!(f["percpu"].as_u64().unwrap() >= 256, "{f}");
    // Modules without per-CPU data take none.
    for (name, bytes) in &plan {
        if *bytes == 0 {
            assert_eq!(module(name)["percpu"].as_u64(), Some(0), "{name}");
        }
    }
}

#[test]
fn percpu_one_cpu() {
    check(1);
}

#[test]
fn percpu_two_cpus() {
    check(2);
}

#[test]
fn percpu_four_cpus() {
    check(4);
}

#[test]
fn percpu_eight_cpus() {
    check(8);
}
