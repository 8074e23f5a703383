//! Fault isolation: the test image (`make test-image`) adds modules whose
//! probes page-fault, divide by zero, execute an invalid opcode, panic, never
//! return, wait forever in a kernel service, pass hostile arguments or bad
//! buffers to services, free memory wrongly, or acquire resources and then
//! fail; a kept module whose IRQ handler faults during a later probe; and a
//! kept module whose self-test fails. Each must be expunged (or marked) with
//! its own reason, boot must complete (degraded, because of the last two),
//! and nothing may leak.

use boot_tests::report::{module, names_with_result};
use boot_tests::{BootOutcome, QemuConfig, run_qemu, workspace_root};
use serde_json::Value;
use std::sync::OnceLock;

fn test_image() -> QemuConfig {
    QemuConfig {
        image: workspace_root().join("build").join("test-image.elf"),
        ..QemuConfig::default()
    }
}

/// One boot of the test image with the default command line, shared by the
/// tests of this file.
fn boot() -> &'static (BootOutcome, Value) {
    static BOOT: OnceLock<(BootOutcome, Value)> = OnceLock::new();
    BOOT.get_or_init(|| {
        let out = run_qemu(&test_image());
        // fault_selftest and fault_irq_owner degrade the boot, nothing else
        // may stop it.
        out.assert_degraded();
        let r = out.expect_report();
        (out, r)
    })
}

fn report() -> &'static Value {
    &boot().1
}

fn assert_no_leak(m: &Value) {
    for k in ["heap_bytes", "frames", "irqs"] {
        assert_eq!(
            m["leak"][k].as_i64(),
            Some(0),
            "{} leaked {k}: {}",
            m["name"],
            m["leak"]
        );
    }
}

fn assert_expunged(r: &Value, name: &str, kind: &str, text: &str) {
    let m = module(r, name);
    assert_eq!(m["result"], "expunged", "{name}: {m}");
    assert_eq!(m["reason_kind"], kind, "{name}: {m}");
    let reason = m["reason"].as_str().unwrap();
    assert!(
        reason.contains(text),
        "{name}: reason {reason:?} lacks {text:?}"
    );
    assert_no_leak(m);
}

#[test]
fn faulting_probes_are_expunged_and_boot_goes_on() {
    let r = report();
    let cases = [
        ("fault_pagefault", "fault", "page fault (#PF) (vector 14)"),
        ("fault_divzero", "fault", "divide error (#DE) (vector 0)"),
        ("fault_ud", "fault", "invalid opcode (#UD) (vector 6)"),
        ("fault_panic", "panic", "panic: "),
        ("fault_hang", "hung", "hung: still running after 100 ms"),
        ("fault_leak", "io", "deliberate failure"),
    ];
    for (name, kind, text) in cases {
        assert_expunged(r, name, kind, text);
    }
    // A module whose dependency was expunged is expunged unprobed.
    let dep = module(r, "fault_dependent");
    assert_eq!(dep["result"], "expunged", "{dep}");
    assert_eq!(dep["reason"], "dependency fault_panic expunged");
    assert_eq!(dep["probe_ns"].as_u64(), Some(0), "never probed");
    assert!(dep["leak"].is_null() && dep["released"].is_null(), "{dep}");
    // The page fault names the address the probe touched.
    let pf = module(r, "fault_pagefault")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pf.contains("address 0xffff900000000000"), "{pf}");
    // What fault_leak took was really released.
    let rel = &module(r, "fault_leak")["released"];
    assert_eq!(rel["allocs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["alloc_bytes"].as_u64(), Some(65536), "{rel}");
    assert_eq!(rel["irqs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["ports"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["devices"].as_u64(), Some(1), "{rel}");
    // The real drivers after them were still probed and kept.
    let kept = names_with_result(r, "kept");
    for name in ["pci", "uart_com1", "e1000"] {
        assert!(kept.iter().any(|k| k == name), "{name} not kept: {kept:?}");
    }
    assert_eq!(r["console"], "uart_com1");
    assert_eq!(r["wx_pages"].as_u64(), Some(0));
    assert_eq!(r["wx_alias_frames"].as_u64(), Some(0));
}

/// What a hung probe showed in one boot: the module, the reason, the
/// probe's time and the budget. `fault_delay` waits in a kernel service
/// (`delay_us(u64::MAX)`), whose wait ends at the budget; `fault_hang`
/// spins in its own code, which the timer tick cuts off.
struct Wait {
    in_service: bool,
    reason: String,
    ns: u64,
    budget_ms: u64,
}

impl Wait {
    fn of(r: &Value, name: &str, in_service: bool) -> Wait {
        let m = module(r, name);
        assert_eq!(m["result"], "expunged", "{m}");
        assert_eq!(m["reason_kind"], "hung", "{m}");
        assert_no_leak(m);
        Wait {
            in_service,
            reason: m["reason"].as_str().unwrap().to_string(),
            ns: m["probe_ns"].as_u64().unwrap(),
            budget_ms: r["probe_budget_ms"].as_u64().unwrap(),
        }
    }

    /// The timer tick's reason; the service's adds where it waited.
    fn tick_reason(&self) -> String {
        format!("hung: still running after {} ms", self.budget_ms)
    }

    fn service_reason(&self) -> String {
        format!("{} (waiting in kapi_delay_us)", self.tick_reason())
    }

    /// The probe was stopped where it should be (in the service, or by the
    /// tick), at the budget. The guest notices within a tick (1 ms) or, in
    /// the service, within microseconds; the 10 ms of slack are for the
    /// emulator.
    fn holds(&self) -> Result<(), String> {
        let want = if self.in_service {
            self.service_reason()
        } else {
            self.tick_reason()
        };
        let budget_ns = self.budget_ms * 1_000_000;
        if self.reason != want {
            return Err(format!("reason {:?}, not {want:?}", self.reason));
        }
        if !(budget_ns..=budget_ns + 10_000_000).contains(&self.ns) {
            return Err(format!(
                "ran {} ns against a {} ms budget",
                self.ns, self.budget_ms
            ));
        }
        Ok(())
    }

    /// Whether a failed [`Wait::holds`] is what a host that stops the
    /// emulator produces: the budget is wall time, so a stop before the
    /// call lets the timer tick find it spent in the module's own code (no
    /// service named), and a stop across the deadline makes the probe late.
    /// An early end or any other reason is the kernel's fault.
    fn host_stall(&self) -> bool {
        self.ns >= self.budget_ms * 1_000_000
            && (self.reason == self.tick_reason()
                || (self.in_service && self.reason == self.service_reason()))
    }
}

/// Module `module`'s probe must be stopped at the budget (see
/// [`Wait::holds`]). If the first boot shows what a host stall does (see
/// [`Wait::host_stall`]), one more boot of `cfg` must show it stopped as it
/// should.
fn check_stopped_at_budget(r: &Value, cfg: &QemuConfig, module: &'static str, in_service: bool) {
    let first = Wait::of(r, module, in_service);
    let Err(why) = first.holds() else { return };
    assert!(first.host_stall(), "{module}: {why}");
    eprintln!("{module}: {why} (a host stall?); booting once more");
    let out = run_qemu(cfg);
    out.assert_degraded();
    let again = Wait::of(&out.expect_report(), module, in_service);
    if let Err(why2) = again.holds() {
        panic!("{module}: {why}, and in a second boot: {why2}");
    }
}

/// `delay_us(u64::MAX)` from a `forbid(unsafe_code)` module: the kernel's
/// wait must end at the probe's budget, in the service.
fn check_waiting_service_stops_at_budget(r: &Value, cfg: &QemuConfig) {
    check_stopped_at_budget(r, cfg, "fault_delay", true);
}

#[test]
fn a_waiting_service_stops_at_the_budget() {
    check_waiting_service_stops_at_budget(report(), &test_image());
}

/// A probe spinning in its own code is cut off by the timer tick at the
/// budget, not later.
#[test]
fn a_spinning_probe_is_cut_off_at_the_budget() {
    check_stopped_at_budget(report(), &test_image(), "fault_hang", false);
}

#[test]
fn hostile_arguments_get_clean_errors() {
    let r = report();
    // Through the safe API: every service said no, with its own status.
    assert_expunged(
        r,
        "fault_hostile",
        "unsupported",
        "alloc no-memory, align no-memory, mmio-wrap unsupported, mmio-far no-device, ports unsupported, irq no-device",
    );
    // A raw MMIO read whose end wraps past 2^64 is outside every claim.
    assert_expunged(
        r,
        "fault_mmio_wrap",
        "violation",
        "violation: access to unclaimed MMIO address 0xfffffffffffffffe",
    );
    assert_eq!(
        module(r, "fault_mmio_wrap")["released"]["mmio"].as_u64(),
        Some(1)
    );
    // A raw kapi_log claiming a 1 TiB line is refused before it is read.
    assert_expunged(
        r,
        "fault_log_huge",
        "violation",
        "violation: kapi_log: buffer of 1099511627776 bytes exceeds the 4096-byte limit",
    );
}

#[test]
fn a_fault_inside_a_service_is_the_modules() {
    let (out, r) = boot();
    assert_expunged(
        r,
        "fault_bad_buffer",
        "fault",
        "page fault (#PF) (vector 14) in kernel service kapi_log at address 0xffff810000000000, in the buffer 0xffff810000000000+16 the module passed",
    );
    // The kernel stayed consistent: the same service logs for the modules
    // probed after it, and they are probed as usual.
    let k = out.kernel_output();
    let after = &k[k
        .find("module fault_bad_buffer: expunged")
        .expect("expunge logged")..];
    assert!(
        after.contains("[fault_divzero] fault_divzero: dividing 1 by 0"),
        "{}",
        out.describe()
    );
    assert!(!k.contains("EXCEPTION"), "{}", out.describe());
}

#[test]
fn a_wrong_free_keeps_the_block_accounted() {
    let r = report();
    assert_expunged(
        r,
        "fault_free",
        "violation",
        "with size 1000, align 8: allocated with size 4096, align 8",
    );
    // The block the refused free named was still recorded, and released
    // with the module (assert_expunged checked the heap came back to where
    // it was).
    let rel = &module(r, "fault_free")["released"];
    assert_eq!(rel["allocs"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["alloc_bytes"].as_u64(), Some(4096), "{rel}");
}

#[test]
fn a_kept_modules_irq_handler_fault_is_its_own() {
    let (out, r) = boot();
    let owner = module(r, "fault_irq_owner");
    assert_eq!(owner["result"], "kept", "{owner}");
    let faults = owner["runtime_faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{owner}");
    let f = &faults[0];
    assert_eq!(f["where"], "IRQ 6 handler", "{f}");
    assert_eq!(f["kind"], "fault", "{f}");
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("page fault (#PF) (vector 14) at rip 0x")
            && reason.contains("address 0xffff900000000000"),
        "{f}"
    );
    assert!(
        f["at"]
            .as_str()
            .is_some_and(|a| a.starts_with("fault_irq_owner+0x")),
        "{f}"
    );
    // It happened during another module's probe, which was not blamed: the
    // interrupt was acknowledged and the line freed (fault_irq_raise got
    // IRQ 6 again, and it fired again).
    assert_eq!(f["during"], "probe of fault_irq_raise", "{f}");
    let raise = module(r, "fault_irq_raise");
    assert_eq!(raise["result"], "kept", "{raise}");
    assert!(raise["runtime_faults"].as_array().unwrap().is_empty());
    assert!(
        out.serial
            .contains("[fault_irq_raise] fault_irq_raise: IRQ 6 delivered to the new handler"),
        "{}",
        out.describe()
    );
    let line = out
        .line_with("module fault_irq_owner: IRQ 6 handler on CPU 0: page fault")
        .unwrap_or_else(|| panic!("no fault line: {}", out.describe()));
    assert!(line.contains("; IRQ 6 disabled"), "{line}");
}

#[test]
fn released_resources_are_claimed_again_and_held_irqs_are_busy() {
    let (out, r) = boot();
    // fault_reclaim claims fault_leak's ports and IRQ 10 (released when
    // fault_leak was expunged), then IRQ 6, which fault_irq_raise holds.
    assert_expunged(
        r,
        "fault_reclaim",
        "busy",
        "cannot register IRQ 6 handler: Busy",
    );
    assert!(
        out.serial
            .contains("[fault_reclaim] fault_reclaim: got ports 0x340+16 and IRQ 10 again"),
        "{}",
        out.describe()
    );
    let rel = &module(r, "fault_reclaim")["released"];
    assert_eq!(rel["ports"].as_u64(), Some(1), "{rel}");
    assert_eq!(rel["irqs"].as_u64(), Some(1), "{rel}");
}

#[test]
fn a_failed_selftest_degrades_the_boot() {
    let (out, r) = boot();
    let m = module(r, "fault_selftest");
    assert_eq!(m["result"], "kept", "{m}");
    assert_eq!(m["selftest"], "failed", "{m}");
    assert_eq!(
        m["selftest_error"],
        "deliberate self-test failure (read 41, expected 42)"
    );
    // The other kept modules passed theirs, or have none.
    for k in r["modules"].as_array().unwrap() {
        if k["result"] == "kept" && k["name"] != "fault_selftest" {
            assert!(
                k["selftest"] == "passed" || k["selftest"].is_null(),
                "{}: {}",
                k["name"],
                k["selftest"]
            );
            assert!(k["selftest_error"].is_null());
        }
    }
    assert_eq!(r["health"], "degraded");
    assert_eq!(
        r["degraded"],
        serde_json::json!(["fault_irq_owner", "fault_selftest"])
    );
    // The console table shows it, and the boot ends "degraded" (status 37).
    let row = out
        .serial
        .lines()
        .find(|l| l.starts_with("fault_selftest ") && l.contains(" kept "))
        .unwrap_or_else(|| panic!("no table row: {}", out.describe()));
    assert!(
        row.contains(" FAIL ")
            && row
                .ends_with("selftest failed: deliberate self-test failure (read 41, expected 42)"),
        "{row}"
    );
    let header = out.line_with("relocs  probe us").expect("table header");
    assert!(header.contains("selftest reason"), "{header}");
    assert!(out.serial.contains(
        "exit: degraded: 2 kept module(s) failed after their probe: fault_irq_owner, fault_selftest"
    ));
    assert!(!out.serial.contains("exit: success"));
}

#[test]
fn probe_budget_is_settable() {
    let out = run_qemu(&test_image().cmdline("probe_budget_ms=30"));
    out.assert_degraded();
    let r = out.expect_report();
    assert_eq!(r["probe_budget_ms"].as_u64(), Some(30));
    let hang = module(&r, "fault_hang");
    assert_eq!(hang["reason"], "hung: still running after 30 ms");
    // The cut-off happened at the budget, not long after (TSC-timed; 1 ms ticks).
    let cfg = test_image().cmdline("probe_budget_ms=30");
    check_stopped_at_budget(&r, &cfg, "fault_hang", false);
    check_waiting_service_stops_at_budget(&r, &cfg);
}
