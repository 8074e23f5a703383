//! Boot tests: start the kernel image under QEMU and check what the kernel
//! measured and printed. Needs `make image` first (`make test` does it).

use std::time::Duration;

use boot_tests::{BootOutcome, QemuConfig, number_after, run_qemu};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Usable memory the kernel found in the PVH memory map, in bytes.
fn usable_bytes(out: &BootOutcome) -> u64 {
    let line = out
        .line_with("usable in")
        .unwrap_or_else(|| panic!("no memory summary: {}", out.describe()));
    number_after(line, "memory:").expect("KiB count") * KIB
}

#[test]
fn boot_succeeds_and_reports_the_machine() {
    let out = run_qemu(&QemuConfig::default().cmdline("plk.test=boot token"));
    out.assert_passed();
    let k = out.kernel_output();
    assert!(k.starts_with("plk "), "banner first: {}", out.describe());
    assert!(k.contains("kernel with prelinked built-in modules"));

    // The command line came through PVH.
    assert!(
        k.contains("cmdline: \"plk.test=boot token\""),
        "{}",
        out.describe()
    );

    // The memory map is QEMU's: with -m 256M the usable RAM is a little
    // under 256 MiB (low-memory holes and firmware areas excluded).
    let usable = usable_bytes(&out);
    assert!(
        (240 * MIB..=256 * MIB).contains(&usable),
        "usable memory {usable} does not fit -m 256M"
    );
    assert!(k.contains("] usable"), "memory map regions listed");

    // TSC calibrated to a plausible frequency.
    let line = out.line_with("tsc: ").expect("tsc line");
    let mhz = number_after(line, "tsc:").expect("MHz");
    assert!((100..=10_000).contains(&mhz), "TSC {mhz} MHz: {line}");

    // Paging: W^X holds in the live tables, identity map gone, 2 MiB pages.
    let line = out.line_with("paging: kernel tables").expect("paging line");
    assert!(line.contains("W+X pages: 0,"), "{line}");
    assert!(line.contains("low identity map removed: yes"), "{line}");
    assert!(number_after(line, "tables at").is_some());
    let counts = &line[line.find("tables at").unwrap()..];
    let counts = &counts[counts.find(": ").unwrap() + 2..];
    let huge = number_after(counts, "").expect("2M count");
    assert!(
        huge >= 128,
        "direct map of 256 MiB uses 2 MiB pages: {line}"
    );

    // The frame allocator holds most of memory, minus image and bitmap.
    let free = number_after(out.line_with("frames: ").expect("frames line"), "frames:").unwrap();
    assert!(
        free * 4096 > usable - 32 * MIB && free * 4096 < usable,
        "free frames {free}"
    );

    for test in [
        "exception hook",
        "paging",
        "heap",
        "irq",
        "timer",
        "exports",
    ] {
        assert!(
            k.contains(&format!("selftest: {test}: ok")),
            "selftest {test} missing: {}",
            out.describe()
        );
    }
    assert!(k.contains("selftest: all passed"));
    assert!(k.contains("exit: success"));
    // 256 MiB is plenty: the full heap and two huge pages in the paging test.
    let heap = out.line_with("heap: ").expect("heap line");
    assert_eq!(number_after(heap, "heap:"), Some(4096), "{heap}");
    assert!(!heap.contains("reduced"), "{heap}");
    assert!(
        k.contains("count over 2 x 2M + 3 x 4K"),
        "{}",
        out.describe()
    );
}

#[test]
fn memory_summary_follows_the_machine() {
    let small = run_qemu(&QemuConfig::default());
    let big = run_qemu(&QemuConfig::default().memory("512M"));
    small.assert_passed();
    big.assert_passed();
    let (s, b) = (usable_bytes(&small), usable_bytes(&big));
    assert!(
        (496 * MIB..=512 * MIB).contains(&b),
        "usable memory {b} does not fit -m 512M"
    );
    // The difference is exactly the extra RAM, give or take firmware use.
    let diff = b - s;
    assert!(
        (250 * MIB..=262 * MIB).contains(&diff),
        "256M vs 512M differ by {diff}"
    );
}

#[test]
fn page_fault_is_reported_with_vector_and_address() {
    let out = run_qemu(&QemuConfig::default().cmdline("fault=pagefault"));
    out.assert_failed();
    let k = out.kernel_output();
    assert!(
        k.contains("EXCEPTION: vector 14 #PF (Page Fault)"),
        "{}",
        out.describe()
    );
    let cr2 = number_after(k, "CR2=").expect("CR2 printed");
    assert_eq!(cr2, 0xffff_ffff_dead_0000, "faulting address");
    assert!(k.contains("not present on read"), "{}", out.describe());
    // The report names RIP inside the kernel text and all registers.
    let rip = number_after(k, "RIP=").expect("RIP printed");
    assert!(
        (0xffff_ffff_8020_0000..0xffff_ffff_8040_0000).contains(&rip),
        "RIP {rip:#x}"
    );
    for reg in ["RAX=", "RBX=", "RSP=", "RFLAGS=", "R15=", "CS=0x0008"] {
        assert!(k.contains(reg), "{reg} missing: {}", out.describe());
    }
    assert!(!k.contains("exit: success"));
}

#[test]
fn invalid_opcode_is_reported() {
    let out = run_qemu(&QemuConfig::default().cmdline("fault=ud"));
    out.assert_failed();
    assert!(
        out.kernel_output()
            .contains("EXCEPTION: vector 6 #UD (Invalid Opcode)"),
        "{}",
        out.describe()
    );
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let out = run_qemu(&QemuConfig::default().cmdline("fault=stackoverflow"));
    out.assert_failed();
    let k = out.kernel_output();
    // The #PF on the guard page cannot be delivered on the same stack, so
    // the CPU raises #DF, which runs on its IST stack.
    assert!(
        k.contains("EXCEPTION: vector 8 #DF (Double Fault)"),
        "{}",
        out.describe()
    );
    let line = out
        .line_with("kernel stack overflow")
        .expect("overflow named");
    let guard = number_after(
        out.line_with("guard page at").expect("stack line"),
        "guard page at",
    )
    .expect("guard address");
    let cr2 = number_after(line, "CR2=").expect("CR2");
    assert_eq!(
        cr2 & !0xfff,
        guard,
        "faulting address is the guard page: {line}"
    );
}

#[test]
fn panic_is_reported_with_location() {
    let out = run_qemu(&QemuConfig::default().cmdline("fault=panic"));
    out.assert_failed();
    let line = out.line_with("KERNEL PANIC").expect("panic line");
    assert!(line.contains("kernel/src/main.rs:"), "{line}");
    assert!(line.contains("fault=panic requested"), "{line}");
}

#[test]
fn halt_keeps_running_until_killed() {
    let out = run_qemu(
        &QemuConfig::default()
            .cmdline("halt")
            .timeout(Duration::from_secs(8)),
    );
    assert!(
        out.timed_out,
        "kernel should idle, not exit: {}",
        out.describe()
    );
    assert_eq!(out.exit_status, None);
    assert!(!out.passed());
    let k = out.kernel_output();
    assert!(k.contains("selftest: all passed"), "{}", out.describe());
    assert!(k.contains("halt: idling with interrupts on"));
    assert!(!k.contains("exit: success"));
}

#[test]
fn below_the_minimum_memory_the_kernel_says_so_and_at_it_boots_smaller() {
    // Far below any plausible minimum: one line naming the minimum, then
    // the failure status; no panic.
    let low = run_qemu(&QemuConfig::default().memory("10M"));
    low.assert_failed();
    let k = low.kernel_output();
    assert_eq!(
        k.matches("the kernel needs").count(),
        1,
        "{}",
        low.describe()
    );
    assert!(!k.contains("PANIC"), "{}", low.describe());
    let line = low.line_with("the kernel needs").unwrap();
    let min = number_after(line, "at least").expect("minimum in MiB");
    assert!(line.contains(&format!("(QEMU -m {min}M)")), "{line}");
    let free_kib = number_after(line, "memory:").expect("free KiB");
    let need_kib = number_after(line, "the kernel needs").expect("needed KiB");
    assert!(free_kib < need_kib, "{line}");
    // The README states the same minimum.
    let readme = std::fs::read_to_string(boot_tests::workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("`-m {min}M`")),
        "README does not state the minimum of {min} MiB"
    );

    // One MiB below the minimum: refused the same way.
    let below = run_qemu(&QemuConfig::default().memory(&format!("{}M", min - 1)));
    below.assert_failed();
    let line = below.line_with("the kernel needs").expect("refusal line");
    assert_eq!(number_after(line, "at least"), Some(min), "{line}");

    // At the minimum: it boots, with a smaller heap and paging test region,
    // and probes the modules as on a big machine.
    let at = run_qemu(&QemuConfig::default().memory(&format!("{min}M")));
    at.assert_passed();
    let heap = at.line_with("heap: ").expect("heap line");
    let heap_kib = number_after(heap, "heap:").expect("heap KiB");
    assert!(
        heap_kib < 4096 && heap.contains("(reduced from 4096 KiB"),
        "{heap}"
    );
    let k = at.kernel_output();
    assert!(k.contains("selftest: all passed"), "{}", at.describe());
    assert!(
        k.contains("selftest: paging: ok (map/protect/unmap/split/translate/count over 1 x 2M"),
        "{}",
        at.describe()
    );
    let r = at.expect_report();
    let kept = boot_tests::report::names_with_result(&r, "kept");
    for name in ["pci", "uart_com1", "e1000", "rtc"] {
        assert!(kept.iter().any(|k| k == name), "{name} not kept: {kept:?}");
    }
}
