//! SMP: every CPU the machine has is started and reported, IPI calls run
//! on the CPU they name, page-table changes reach every CPU's TLB, and a
//! CPU that does not answer is left out while boot goes on. Everything
//! checked is what the kernel measured and printed (the `REPORT` line, the
//! `SMP_CALLS` and `SHOOTDOWN` lines, the boot log), set against the
//! machine the test asked QEMU for.

use std::collections::BTreeSet;

use boot_tests::report::addr;
use boot_tests::{BootOutcome, Console, QemuConfig, SHELL_PROMPT, Serial, number_after, run_qemu};
use serde_json::Value;

/// `cpus.apic_ids` of the report (started CPUs in index order).
fn apic_ids(report: &Value) -> Vec<u64> {
    report["cpus"]["apic_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no cpus.apic_ids: {}", report["cpus"]))
        .iter()
        .map(|v| v.as_u64().expect("APIC id"))
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The log line announcing that the CPU with `apic_id` started.
fn started_line(out: &BootOutcome, apic_id: u64) -> Option<&str> {
    out.serial
        .lines()
        .find(|l| l.contains("smp: CPU ") && l.contains(&format!("(APIC id {apic_id}) started in")))
}

/// Boots with `n` CPUs and checks all of them were started and reported.
fn all_cpus_start(n: u64) {
    // compact-split frees 4 KiB pages after the module phase (compact
    // frees nothing when each class fits its one huge page), so there are
    // unmapped ranges for the shootdown count below.
    let out = run_qemu(
        &QemuConfig::default()
            .smp(n as u32)
            .cmdline("reclaim=compact-split"),
    );
    out.assert_passed();
    let r = out.expect_report();
    let cpus = &r["cpus"];
    assert_eq!(u(&cpus["present"]), n, "present: {cpus}");
    assert_eq!(u(&cpus["started"]), n, "started: {cpus}");
    let ids = apic_ids(&r);
    assert_eq!(ids.len() as u64, n, "{cpus}");
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "APIC ids distinct: {ids:?}");
    assert_eq!(cpus["not_started"], Value::Array(vec![]), "{cpus}");

    // Each AP's start is logged with its APIC id, and the AP read that id
    // from its own local APIC.
    for &id in &ids[1..] {
        let line = started_line(&out, id)
            .unwrap_or_else(|| panic!("no start line for APIC id {id}: {}", out.describe()));
        assert_eq!(
            number_after(line, "its local APIC reads id"),
            Some(id),
            "{line}"
        );
        let khz = number_after(line, "timer clock").expect("timer clock");
        assert!(khz > 0, "AP timer calibrated: {line}");
    }
    let check = out
        .line_with("smp: IPI call on all CPUs ran on")
        .unwrap_or_else(|| panic!("no IPI check: {}", out.describe()));
    assert_eq!(number_after(check, "ran on"), Some(n), "{check}");
    assert!(check.contains("each saw its own local APIC id"), "{check}");

    // With other CPUs online, every freed range the module phase unmapped
    // needed a TLB shootdown; alone, none is sent.
    let shootdowns = u(&r["tlb_shootdowns"]);
    let freed: usize = r["regions"]
        .as_object()
        .expect("regions")
        .values()
        .map(|reg| reg["freed"].as_array().map_or(0, Vec::len))
        .sum();
    if n == 1 {
        assert_eq!(shootdowns, 0, "one CPU needs no shootdown");
    } else {
        assert!(freed > 0, "the module phase freed ranges: {}", r["regions"]);
        assert!(
            shootdowns >= freed as u64,
            "{shootdowns} shootdowns for {freed} unmapped ranges"
        );
    }
    let line = out
        .line_with("the module phase needed")
        .expect("phase line");
    assert_eq!(number_after(line, "needed"), Some(shootdowns), "{line}");
    let all: Vec<u64> = (0..n).collect();
    assert_watchdog_reaches(&r, &all);
}

/// The NMI watchdog is armed and reaches exactly the CPUs `cpus` (by
/// index), each of which took NMIs from it; those past the eighth through
/// CPU 0's forwarding, every forward accepted.
fn assert_watchdog_reaches(r: &Value, cpus: &[u64]) {
    let w = &r["watchdog"];
    assert_eq!(w["armed"], true, "{w}");
    assert_eq!(u(&w["gsi"]), 2, "QEMU's PIT arrives on GSI 2: {w}");
    let reached: Vec<u64> = w["cpus"].as_array().expect("cpus").iter().map(u).collect();
    assert_eq!(reached, cpus, "{w}");
    let forwarded: Vec<u64> = w["forwarded"]
        .as_array()
        .expect("forwarded")
        .iter()
        .map(u)
        .collect();
    let later: Vec<u64> = cpus.iter().copied().filter(|&i| i >= 8).collect();
    assert_eq!(forwarded, later, "{w}");
    assert_eq!(u(&w["forward_failures"]), 0, "{w}");
    let nmis = w["nmis"].as_object().expect("nmis");
    let counted: Vec<u64> = nmis.keys().map(|k| k.parse().unwrap()).collect();
    assert_eq!(counted, cpus, "one count per running CPU: {w}");
    assert!(nmis.values().all(|c| u(c) > 0), "every CPU took NMIs: {w}");
    // CPU 0 forwards to a later CPU only while arming and while a callback
    // there is due (none is, in these boots): idle, they are not woken at
    // the PIT's rate.
    let cpu0 = u(&nmis["0"]);
    for i in &later {
        let n = u(&nmis[&i.to_string()]);
        assert!(n * 4 < cpu0, "CPU {i} took {n} NMIs, CPU 0 {cpu0}: {w}");
    }
}

#[test]
fn the_nmi_watchdog_can_be_turned_off() {
    let out = run_qemu(&QemuConfig::default().cmdline("nmi_watchdog=0"));
    out.assert_passed();
    let r = out.expect_report();
    let w = &r["watchdog"];
    assert_eq!(w["armed"], false, "{w}");
    assert_eq!(w["reason"], "nmi_watchdog=0 on the command line", "{w}");
    assert_eq!(
        w["nmis"],
        serde_json::json!({"0": 0, "1": 0}),
        "no NMI at all: {w}"
    );
    let line = out
        .line_with("watchdog: not armed")
        .unwrap_or_else(|| panic!("not said: {}", out.describe()));
    assert!(line.contains("nmi_watchdog=0"), "{line}");
}

/// Boots into the shell with `cmdline` and COM1 multiplexed with QEMU's
/// monitor, and injects an NMI into every CPU from the monitor (Ctrl-A C
/// switches to it) once the shell is up. The console is left on the
/// monitor.
fn monitor_nmi(cmdline: &str) -> Console {
    let mut s = Console::start(
        &QemuConfig::default()
            .serial(Serial::Console)
            .cmdline(&format!("shell {cmdline}")),
    );
    s.wait_for(SHELL_PROMPT);
    s.send(b"\x01c");
    s.wait_for("(qemu)");
    s.send(b"nmi\n");
    s
}

/// An NMI the watchdog did not send, with the watchdog off, is an
/// unexpected exception: reported once, with the chipset's NMI status
/// (port 0x61, no hardware error under QEMU), and the kernel stops.
#[test]
fn an_nmi_with_the_watchdog_off_is_reported_with_its_status() {
    let out = monitor_nmi("nmi_watchdog=0").finish();
    out.assert_failed();
    let serial = out.kernel_output();
    assert_eq!(
        (
            serial.matches("EXCEPTION: vector").count(),
            serial.matches("EXCEPTION: vector 2 NMI").count()
        ),
        (1, 1),
        "one report, though both CPUs took it: {}",
        out.describe()
    );
    let status = out
        .line_with("NMI status (port 0x61)")
        .unwrap_or_else(|| panic!("no status line: {}", out.describe()));
    assert!(status.ends_with("no hardware error reported"), "{status}");
}

/// With the watchdog armed, an NMI with no hardware error is one more
/// tick: the shell goes on to its `exit` and the boot ends well.
#[test]
fn an_nmi_with_the_watchdog_armed_is_a_tick() {
    let mut s = monitor_nmi("");
    s.wait_for("(qemu)");
    s.send(b"\x01c");
    s.send(b"exit\n");
    let out = s.finish();
    out.assert_passed();
    assert!(!out.serial.contains("EXCEPTION"), "{}", out.describe());
}

#[test]
fn one_cpu() {
    all_cpus_start(1);
}

#[test]
fn two_cpus() {
    all_cpus_start(2);
}

#[test]
fn four_cpus() {
    all_cpus_start(4);
}

#[test]
fn eight_cpus() {
    all_cpus_start(8);
}

/// Past the eight CPUs the I/O APIC can address in flat logical mode: the
/// watchdog's NMI reaches CPUs 8 and 9 through CPU 0's forwarding.
#[test]
fn ten_cpus() {
    all_cpus_start(10);
}

/// The `SMP_CALLS` entries of `key`, checked to have run on the CPU they
/// name and seen that CPU's APIC id; returns the APIC ids seen.
fn calls_saw_their_own_cpu(calls: &Value, key: &str, report_ids: &[u64]) -> Vec<u64> {
    let list = calls[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {calls}"));
    assert_eq!(
        list.len(),
        report_ids.len(),
        "{key}: one call per CPU: {calls}"
    );
    let mut seen = Vec::new();
    for c in list {
        assert_eq!(c["ran_on"], c["cpu"], "{key}: ran on the CPU named: {c}");
        let id = u(&c["seen_apic_id"]);
        assert_eq!(id, u(&c["apic_id"]), "{key}: saw its CPU's APIC id: {c}");
        seen.push(id);
    }
    seen
}

#[test]
fn ipi_calls_run_on_the_cpu_they_name() {
    let n = 4;
    let out = run_qemu(&QemuConfig::default().smp(n).cmdline("smp_test=ipi"));
    out.assert_passed();
    let r = out.expect_report();
    let ids = apic_ids(&r);
    assert_eq!(ids.len(), n as usize);
    let calls = out
        .json_line("SMP_CALLS")
        .unwrap_or_else(|| panic!("no SMP_CALLS line: {}", out.describe()));
    // The APIC id each call read from the local APIC of the CPU it ran on
    // is that CPU's, in the order of the report's CPUs.
    assert_eq!(calls_saw_their_own_cpu(&calls, "each", &ids), ids);
    assert_eq!(calls_saw_their_own_cpu(&calls, "all", &ids), ids);
    assert_eq!(u(&calls["all_ran"]), n as u64);

    // The guard's state is each CPU's own: while the boot CPU is inside a
    // guarded call, it counts one and every other CPU none.
    assert_eq!(calls["guard_call"], "returned", "{calls}");
    let depths: Vec<(u64, u64)> = calls["guard_depths"]
        .as_array()
        .unwrap_or_else(|| panic!("no guard_depths: {calls}"))
        .iter()
        .map(|d| (u(&d["cpu"]), u(&d["depth"])))
        .collect();
    let want: Vec<(u64, u64)> = (0..n as u64).map(|i| (i, u64::from(i == 0))).collect();
    assert_eq!(depths, want, "guard depth per CPU: {calls}");

    // Every CPU's local APIC timer ticks, at about the rate it was set to.
    let window_ns = u(&calls["timer_window_ns"]);
    let expected = window_ns * u(&calls["tick_hz"]) / 1_000_000_000;
    let timers = calls["timers"].as_array().expect("timers");
    assert_eq!(timers.len(), n as usize);
    for t in timers {
        assert!(u(&t["clock_hz"]) > 0, "calibrated: {t}");
        let ticks = u(&t["ticks"]);
        assert!(
            ticks >= 1 && ticks <= 3 * expected + 3,
            "{ticks} ticks in {window_ns} ns (about {expected} expected): {t}"
        );
    }

    // All CPUs logged at once: every line came out whole, each once.
    let mut lines = BTreeSet::new();
    let ours = |l: &&str| l.contains("call on all CPUs, line") || l.contains("from CPU");
    for l in out.serial.lines().filter(ours) {
        let (_, rest) = l
            .split_once("] INFO  smp_test=ipi: call on all CPUs, line ")
            .unwrap_or_else(|| panic!("mixed console line: {l:?}\n{}", out.describe()));
        let mixed = || -> ! { panic!("mixed console line: {l:?}\n{}", out.describe()) };
        let num = |w: &str| -> u64 { w.parse().unwrap_or_else(|_| mixed()) };
        let words: Vec<&str> = rest.split(' ').collect();
        if words.len() != 9
            || words[1..3] != ["from", "CPU"]
            || words[4..8] != ["with", "local", "APIC", "id"]
        {
            mixed();
        }
        let (line, cpu, id) = (num(words[0]), num(words[3]), num(words[8]));
        assert_eq!(Some(&id), ids.get(cpu as usize), "{l:?}");
        assert!(lines.insert((cpu, line)), "line printed twice: {l:?}");
    }
    assert_eq!(lines.len(), 3 * n as usize, "{}", out.describe());
}

#[test]
fn unmapped_page_faults_on_every_ap() {
    let n = 4;
    let out = run_qemu(&QemuConfig::default().smp(n).cmdline("smp_test=shootdown"));
    // The last step reads the page without a fix-up on an AP: the boot ends
    // with that page fault's report.
    out.assert_failed();
    let r = out.expect_report();
    let ids = apic_ids(&r);
    let s = out
        .json_line("SHOOTDOWN")
        .unwrap_or_else(|| panic!("no SHOOTDOWN line: {}", out.describe()));
    let page = addr(&s["page"]);
    let marker = &s["marker"];
    let aps = s["cpus"].as_array().expect("cpus");
    assert_eq!(aps.len(), n as usize - 1, "every AP: {s}");
    for ap in aps {
        assert!(u(&ap["cpu"]) >= 1, "an AP: {ap}");
        assert!(ids[1..].contains(&u(&ap["apic_id"])), "{ap}");
        // Before the unmap the AP read what the boot CPU wrote (so its TLB
        // held the page); after it, the same read faults at the page.
        assert_eq!(&ap["before"]["value"], marker, "{ap}");
        assert!(ap["before"]["fault"].is_null(), "{ap}");
        assert!(ap["after"]["value"].is_null(), "stale TLB entry: {ap}");
        assert_eq!(addr(&ap["after"]["fault"]), page, "{ap}");
    }
    assert!(u(&s["shootdowns"]) >= 1, "the unmap shot down: {s}");

    let k = out.kernel_output();
    let report = &k[k
        .find("EXCEPTION: vector 14 #PF (Page Fault)")
        .unwrap_or_else(|| panic!("no page-fault report: {}", out.describe()))..];
    let cpu = number_after(report, "on CPU").expect("CPU named");
    let apic = number_after(report, "(APIC id").expect("APIC id named");
    let last = aps.last().unwrap();
    assert_eq!(cpu, u(&last["cpu"]), "the AP that read: {report}");
    assert_eq!(apic, u(&last["apic_id"]), "{report}");
    assert_ne!(apic, ids[0], "not the boot CPU");
    assert_eq!(number_after(report, "CR2="), Some(page), "{report}");
    assert!(report.contains("not present on read"), "{report}");
}

#[test]
fn cpu_without_startup_ipi_is_reported_and_boot_goes_on() {
    let skipped = 2;
    let out = run_qemu(
        &QemuConfig::default()
            .smp(4)
            .cmdline(&format!("smp_skip_sipi={skipped}")),
    );
    out.assert_passed();
    let r = out.expect_report();
    let cpus = &r["cpus"];
    assert_eq!(u(&cpus["present"]), 4, "{cpus}");
    assert_eq!(u(&cpus["started"]), 3, "{cpus}");
    let ids = apic_ids(&r);
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&skipped), "{cpus}");
    let missing = cpus["not_started"].as_array().expect("not_started");
    assert_eq!(missing.len(), 1, "{cpus}");
    assert_eq!(u(&missing[0]["apic_id"]), skipped, "{cpus}");
    let reason = missing[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("did not answer"), "{reason}");
    let line = out
        .line_with(&format!("CPU with APIC id {skipped} not started"))
        .unwrap_or_else(|| panic!("not reported: {}", out.describe()));
    assert!(line.contains("boot goes on without it"), "{line}");
    assert!(started_line(&out, skipped).is_none());
    // The others work: the call on all CPUs reached the three.
    let check = out.line_with("IPI call on all CPUs ran on").expect("check");
    assert_eq!(number_after(check, "ran on"), Some(3), "{check}");
    // The watchdog's NMI goes to the three running CPUs only (CPU 2, left
    // waiting for its STARTUP, has no logical APIC id; indices follow the
    // MADT).
    assert_watchdog_reaches(&r, &[0, 1, 3]);
}
