//! The other CPUs at boot: found in the ACPI MADT, started, parked, and
//! reported.
//!
//! [`init`] (after the TSC is calibrated and interrupts are on) finds the
//! RSDP (PVH start info, else the EBDA and BIOS area), the MADT, and the
//! local APIC; sets up the boot CPU's local APIC and timer; then starts
//! every other CPU the MADT lists as enabled, one at a time
//! ([`crate::arch::smp`]). Each CPU started is logged with its APIC id and
//! start-up time; one that does not answer in time is logged and left out,
//! and boot goes on. The started CPUs idle (`hlt`, interrupts on) while the
//! boot CPU probes the modules; they take IPI calls and TLB shootdowns.
//! Finally every CPU runs a call that checks it sees its own APIC id.
//!
//! Command-line options:
//!
//! | option | effect |
//! |---|---|
//! | `smp_skip_sipi=ID` | send no STARTUP IPI to the CPU with APIC id `ID` (it is reported as not started) |
//! | `smp_test=ipi` | after boot, run a call on each CPU and on all at once; print `SMP_CALLS {json}` with the APIC id each call read from its local APIC, each CPU's timer ticks, and each CPU's guard depth while the boot CPU is inside a guarded call (`guard_depths`: 1 on the boot CPU, 0 elsewhere) |
//! | `smp_test=shootdown` | after boot, let every AP read a page, unmap it on the boot CPU, let every AP read it again (it must fault), print `SHOOTDOWN {json}`, then read it unguarded on the last AP: the page-fault report names that CPU |
//!
//! The `REPORT` line gets `cpus` (`present`, `started`, `apic_ids` of the
//! started CPUs in index order, `not_started` with APIC id and reason) and
//! `tlb_shootdowns`, the shootdowns the module phase needed.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use serde_json::{Value, json};

use smpboot::madt::Madt;
use smpboot::plan::{Action, plan, present};
use spin::Once;

use crate::arch::percpu::{self, MAX_CPUS};
use crate::arch::smp::{self as arch_smp, Starter};
use crate::arch::{apic, tsc};
use crate::mm::{PAGE_SIZE, frames, paging};

/// The page the shootdown test maps and unmaps (in the local APIC's PML4
/// slot, 2 MiB above it).
const TEST_PAGE: u64 = apic::LAPIC_VIRT + (2 << 20);
/// What the shootdown test writes there.
const TEST_MARKER: u64 = 0x5a5a_0000_0bad_f00d;

/// A CPU that is present but was not started.
struct Missing {
    apic_id: u32,
    reason: String,
}

/// What bring-up found and did.
struct Summary {
    present: usize,
    /// (CPU index, APIC id) of every started CPU, the boot CPU first.
    started: Vec<(usize, u32)>,
    not_started: Vec<Missing>,
}

static SUMMARY: Once<Summary> = Once::new();
/// Shootdowns before the module phase began.
static MODULE_PHASE_START: AtomicU64 = AtomicU64::new(0);

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The RSDP's physical address: from the PVH start info, else searched in
/// the first KiB of the EBDA and in the BIOS area (ACPI 6.5, 5.2.5.1).
fn find_rsdp() -> Option<u64> {
    if let Some(p) = crate::pvh::boot_info().and_then(|b| b.rsdp) {
        return Some(p);
    }
    let ebda = arch_smp::firmware_bytes(0x40e, 2)
        .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])) << 4)
        .filter(|&e| (0x8_0000..0xa_0000).contains(&e));
    let areas = [ebda.map(|e| (e, 1024)), Some((0xe_0000, 0x2_0000))];
    areas.into_iter().flatten().find_map(|(base, len)| {
        let bytes = arch_smp::firmware_bytes(base, len)?;
        smpboot::acpi::scan_for_rsdp(bytes).map(|off| base + off as u64)
    })
}

/// The MADT's physical address and bytes.
pub(crate) fn find_madt() -> Result<(u64, &'static [u8]), String> {
    let rsdp = find_rsdp().ok_or("no ACPI RSDP found")?;
    smpboot::acpi::find_table(
        rsdp,
        &mut |p, l| arch_smp::firmware_bytes(p, l),
        smpboot::madt::SIGNATURE,
        0,
    )
    .map_err(|e| format!("no usable MADT (RSDP at {rsdp:#x}): {e:?}"))
}

/// Sets up the boot CPU's local APIC and timer and starts the other CPUs.
/// Needs the boot CPU's per-CPU area, the calibrated TSC and interrupts on.
pub fn init() {
    let Some(bsp) = percpu::current() else {
        log::error!("smp: the boot CPU has no per-CPU area; running on one CPU");
        return single(0, "no per-CPU area");
    };
    if !apic::present() {
        log::warn!("smp: this CPU has no local APIC; running on one CPU");
        return single(bsp.apic_id, "no local APIC");
    }
    let (madt_phys, cpus, madt_lapic) = match find_madt().and_then(|(phys, bytes)| {
        let m = Madt::parse(bytes).map_err(|e| format!("MADT at {phys:#x} refused: {e:?}"))?;
        Ok((phys, m.cpus().collect::<Vec<_>>(), m.lapic_addr()))
    }) {
        Ok(found) => found,
        Err(e) => {
            log::warn!("smp: {e}; starting no other CPU");
            (0, Vec::new(), apic::msr_base())
        }
    };
    let lapic = apic::msr_base();
    if lapic != madt_lapic {
        log::warn!(
            "apic: MADT names the local APIC at {madt_lapic:#x}, IA32_APIC_BASE at {lapic:#x}; using the latter"
        );
    }
    if let Err(e) = apic::map(lapic) {
        log::error!("apic: cannot map the local APIC at {lapic:#x}: {e}; running on one CPU");
        return single(bsp.apic_id, "local APIC not mapped");
    }
    apic::init_local(true);
    let bsp_id = apic::id();
    bsp.seen_apic_id.store(bsp_id, Ordering::Relaxed);
    let hz = apic::calibrate_timer();
    bsp.timer_hz.store(hz, Ordering::Relaxed);
    apic::start_timer(hz);
    log::info!(
        "apic: local APIC at {lapic:#x}, version {:#x}, boot CPU APIC id {bsp_id}; timer clock {} kHz (calibrated against the TSC over {} us), {} Hz on every CPU",
        apic::version() & 0xff,
        hz / 1000,
        apic::CALIBRATION_US,
        apic::TIMER_HZ
    );
    if bsp_id != bsp.apic_id {
        log::warn!(
            "smp: boot CPU's local APIC id {bsp_id} differs from its initial APIC id {}",
            bsp.apic_id
        );
    }

    let skip = crate::cmdline::get("smp_skip_sipi").and_then(parse_u32);
    let plan = plan(cpus.iter().copied(), bsp_id, MAX_CPUS, skip);
    let enabled = cpus.iter().filter(|c| c.enabled).count();
    log::info!(
        "smp: MADT at {madt_phys:#x} lists {} CPUs ({enabled} enabled), {} present; boot CPU is APIC id {bsp_id}",
        cpus.len(),
        present(&plan)
    );
    if let Some(id) = skip
        && !plan
            .iter()
            .any(|p| p.cpu.apic_id == id && matches!(p.action, Action::Start { .. }))
    {
        log::warn!("smp_skip_sipi={id}: no CPU to start has that APIC id");
    }

    let mut summary = Summary {
        present: present(&plan),
        started: Vec::new(),
        not_started: Vec::new(),
    };
    let mut starter = None;
    if plan
        .iter()
        .any(|p| matches!(p.action, Action::Start { .. }))
    {
        match Starter::new() {
            Ok(s) => starter = Some(s),
            Err(e) => log::error!("smp: cannot install the AP trampoline: {e}"),
        }
    }
    for p in &plan {
        let id = p.cpu.apic_id;
        match p.action {
            Action::Boot => summary.started.push((0, id)),
            Action::Start { index, sipi } => {
                if !sipi {
                    log::warn!("smp_skip_sipi={id}: sending APIC id {id} INIT but no STARTUP IPI");
                }
                let result = match &starter {
                    Some(s) => s.start(index, id, sipi).map_err(|e| e.to_string()),
                    None => Err(String::from("no trampoline")),
                };
                match result {
                    Ok(s) => {
                        let seen = s.cpu.seen_apic_id.load(Ordering::Relaxed);
                        log::info!(
                            "smp: CPU {index} (APIC id {id}) started in {} us; its local APIC reads id {seen}, timer clock {} kHz",
                            s.ns / 1000,
                            s.cpu.timer_hz.load(Ordering::Relaxed) / 1000
                        );
                        if seen != id {
                            log::warn!("smp: CPU {index} reads APIC id {seen}, the MADT says {id}");
                        }
                        summary.started.push((index, id));
                    }
                    Err(e) => {
                        log::warn!(
                            "smp: CPU with APIC id {id} not started: {e}; boot goes on without it"
                        );
                        summary.not_started.push(Missing {
                            apic_id: id,
                            reason: e,
                        });
                    }
                }
            }
            Action::Leave(l) if l.present() => {
                log::warn!("smp: CPU with APIC id {id} not started: {}", l.reason());
                summary.not_started.push(Missing {
                    apic_id: id,
                    reason: String::from(l.reason()),
                });
            }
            Action::Leave(l) => log::debug!("smp: MADT entry APIC id {id}: {}", l.reason()),
        }
    }
    if let Some(s) = starter {
        s.finish();
    }
    let ids: Vec<String> = summary
        .started
        .iter()
        .map(|(_, id)| id.to_string())
        .collect();
    log::info!(
        "smp: {} of {} CPUs started (APIC ids {}); the boot CPU probes, the others idle",
        summary.started.len(),
        summary.present,
        ids.join(" ")
    );
    SUMMARY.call_once(|| summary);
    check_calls();
}

/// Records a one-CPU machine.
fn single(apic_id: u32, why: &str) {
    log::info!("smp: 1 CPU ({why})");
    SUMMARY.call_once(|| Summary {
        present: 1,
        started: alloc::vec![(0, apic_id)],
        not_started: Vec::new(),
    });
}

/// Runs a call on every CPU at once; each must see its own APIC id.
fn check_calls() {
    let seen: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
    let r = arch_smp::call_on_all(&|| {
        seen[percpu::index()].store(u64::from(apic::id()), Ordering::SeqCst);
    });
    let bad: Vec<String> = percpu::online()
        .filter(|c| seen[c.index].load(Ordering::SeqCst) != u64::from(c.apic_id))
        .map(|c| format!("CPU {}", c.index))
        .collect();
    match r {
        Ok(n) if bad.is_empty() => {
            log::info!("smp: IPI call on all CPUs ran on {n}, each saw its own local APIC id")
        }
        Ok(_) => log::error!("smp: IPI call saw a wrong APIC id on {}", bad.join(", ")),
        Err(e) => log::error!("smp: IPI call on all CPUs failed: {e}"),
    }
}

/// Marks the start of the module phase (for [`module_phase_shootdowns`]).
pub fn begin_module_phase() {
    MODULE_PHASE_START.store(arch_smp::shootdowns(), Ordering::Relaxed);
}

/// TLB shootdowns since [`begin_module_phase`].
pub fn module_phase_shootdowns() -> u64 {
    arch_smp::shootdowns() - MODULE_PHASE_START.load(Ordering::Relaxed)
}

/// The CPUs for the report: present, started (with their APIC ids) and
/// those that did not start, with why.
pub fn cpus_report() -> report::Cpus {
    match SUMMARY.get() {
        Some(s) => report::Cpus {
            present: s.present as u64,
            started: s.started.len() as u64,
            apic_ids: s.started.iter().map(|&(_, id)| u64::from(id)).collect(),
            not_started: s
                .not_started
                .iter()
                .map(|m| report::NotStarted {
                    apic_id: u64::from(m.apic_id),
                    reason: m.reason.clone(),
                })
                .collect(),
        },
        // Before bring-up (or without an MADT): the boot CPU alone.
        None => report::Cpus {
            present: 1,
            started: 1,
            apic_ids: percpu::current()
                .map(|c| u64::from(c.apic_id))
                .into_iter()
                .collect(),
            not_started: Vec::new(),
        },
    }
}

/// True if `addr` lies in the shootdown test's page.
pub fn is_test_page(addr: u64) -> bool {
    (TEST_PAGE..TEST_PAGE + PAGE_SIZE).contains(&addr)
}

/// After boot: logs what the module phase needed and runs the
/// `smp_test=` option, if any.
pub fn after_boot() -> Result<(), String> {
    log::info!(
        "smp: {} CPUs online; the module phase needed {} TLB shootdowns ({} in all, {} IPIs)",
        percpu::online().count(),
        module_phase_shootdowns(),
        arch_smp::shootdowns(),
        arch_smp::shootdown_ipis()
    );
    match crate::cmdline::get("smp_test") {
        None => Ok(()),
        Some("ipi") => ipi_test(),
        Some("shootdown") => shootdown_test(),
        Some(other) => Err(format!("smp_test={other}: expected ipi or shootdown")),
    }
}

/// What a call saw on the CPU it ran on: (CPU index from GS, APIC id from
/// the local APIC), packed into one word.
fn pack(index: usize, apic_id: u32) -> u64 {
    (index as u64) << 32 | u64::from(apic_id)
}

fn calls_json(seen: &[AtomicU64; MAX_CPUS]) -> Value {
    Value::Array(
        percpu::online()
            .map(|c| {
                let v = seen[c.index].load(Ordering::SeqCst);
                let (ran_on, seen_id) = if v == u64::MAX {
                    (Value::Null, Value::Null)
                } else {
                    (json!(v >> 32), json!(v & 0xffff_ffff))
                };
                json!({
                    "cpu": c.index,
                    "apic_id": c.apic_id,
                    "ran_on": ran_on,
                    "seen_apic_id": seen_id,
                })
            })
            .collect(),
    )
}

/// `smp_test=ipi`.
fn ipi_test() -> Result<(), String> {
    let each: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
    let cpus: Vec<usize> = percpu::online().map(|c| c.index).collect();
    for &i in &cpus {
        arch_smp::call_on(i, &|| {
            let (index, id) = (percpu::index(), apic::id());
            each[i].store(pack(index, id), Ordering::SeqCst);
            log::info!("smp_test=ipi: call for CPU {i} ran on CPU {index}, local APIC id {id}");
        })
        .map_err(|e| format!("smp_test=ipi: call on CPU {i}: {e}"))?;
    }
    // All at once: every CPU logs at the same time (the lines must not mix).
    let all: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];
    let ran = arch_smp::call_on_all(&|| {
        let (index, id) = (percpu::index(), apic::id());
        all[index].store(pack(index, id), Ordering::SeqCst);
        for line in 0..3 {
            log::info!(
                "smp_test=ipi: call on all CPUs, line {line} from CPU {index} with local APIC id {id}"
            );
        }
    })
    .map_err(|e| format!("smp_test=ipi: call on all CPUs: {e}"))?;

    // Guard state is per CPU: while the boot CPU is inside a guarded call,
    // every CPU counts only its own guarded calls.
    for d in &GUARD_DEPTHS {
        d.store(u64::MAX, Ordering::SeqCst);
    }
    let guard_abort =
        crate::modules::guard::call_writer(crate::kapi::KERNEL, record_guard_depths, b"");
    let guard_depths: Vec<Value> = cpus
        .iter()
        .map(|&i| json!({"cpu": i, "depth": GUARD_DEPTHS[i].load(Ordering::SeqCst)}))
        .collect();

    // Every CPU's own timer keeps ticking.
    let before: Vec<u64> = cpus.iter().map(|&i| ticks(i)).collect();
    let window_ns = 100_000_000;
    let t0 = tsc::read();
    tsc::delay_ns(window_ns);
    let elapsed = tsc::ticks_to_ns(tsc::read() - t0);
    let timers: Vec<Value> = cpus
        .iter()
        .zip(before)
        .map(|(&i, b)| {
            let hz = percpu::cpu(i).map_or(0, |c| c.timer_hz.load(Ordering::Relaxed));
            json!({"cpu": i, "clock_hz": hz, "ticks": ticks(i) - b})
        })
        .collect();
    let j = json!({
        "each": calls_json(&each),
        "all": calls_json(&all),
        "all_ran": ran,
        "timer_window_ns": elapsed,
        "timers": timers,
        "tick_hz": apic::TIMER_HZ,
        "guard_depths": guard_depths,
        "guard_call": guard_abort.map_or_else(|| "returned".to_string(), |a| a.to_string()),
    });
    crate::kprintln!("SMP_CALLS {j}");
    Ok(())
}

/// Each CPU's guard depth as [`record_guard_depths`] saw it.
static GUARD_DEPTHS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// Run under the guard on the boot CPU: has every CPU record its guard
/// depth.
extern "C" fn record_guard_depths(_: *const u8, _: usize) {
    let _ = arch_smp::call_on_all(&|| {
        GUARD_DEPTHS[percpu::index()]
            .store(crate::modules::guard::depth() as u64, Ordering::SeqCst);
    });
}

fn ticks(index: usize) -> u64 {
    percpu::cpu(index).map_or(0, |c| c.timer_ticks.load(Ordering::Relaxed))
}

/// `smp_test=shootdown`: ends with a page fault on an AP.
fn shootdown_test() -> Result<(), String> {
    let aps: Vec<(usize, u32)> = percpu::online()
        .filter(|c| c.index != 0)
        .map(|c| (c.index, c.apic_id))
        .collect();
    let Some(&(last, last_id)) = aps.last() else {
        return Err(String::from("smp_test=shootdown: no other CPU is online"));
    };
    let frame = frames::alloc_zeroed(1, 1).map_err(|e| format!("smp_test=shootdown: {e:?}"))?;
    paging::map_range(TEST_PAGE, frame.0, PAGE_SIZE, paging::Flags::RW)
        .map_err(|e| format!("smp_test=shootdown: map: {e}"))?;
    arch_smp::probe_write(TEST_PAGE, TEST_MARKER)
        .map_err(|a| format!("smp_test=shootdown: write faulted at {a:#x}"))?;

    let read_on = |index: usize| -> Result<Result<u64, u64>, String> {
        let r = AtomicU64::new(0);
        let faulted = AtomicU64::new(0);
        arch_smp::call_on(index, &|| match arch_smp::probe_read(TEST_PAGE) {
            Ok(v) => r.store(v, Ordering::SeqCst),
            Err(cr2) => {
                r.store(cr2, Ordering::SeqCst);
                faulted.store(1, Ordering::SeqCst);
            }
        })
        .map_err(|e| format!("smp_test=shootdown: {e}"))?;
        let v = r.load(Ordering::SeqCst);
        Ok(if faulted.load(Ordering::SeqCst) != 0 {
            Err(v)
        } else {
            Ok(v)
        })
    };
    // Every AP reads the page: its TLB now holds the translation.
    let before: Vec<Result<u64, u64>> = aps
        .iter()
        .map(|&(i, _)| read_on(i))
        .collect::<Result<_, _>>()?;
    let s0 = arch_smp::shootdowns();
    paging::unmap_range(TEST_PAGE, PAGE_SIZE)
        .map_err(|e| format!("smp_test=shootdown: unmap: {e}"))?;
    let shootdowns = arch_smp::shootdowns() - s0;
    let after: Vec<Result<u64, u64>> = aps
        .iter()
        .map(|&(i, _)| read_on(i))
        .collect::<Result<_, _>>()?;
    let _ = frames::free(frame, 1);

    let hex = |v: u64| format!("{v:#x}");
    let read = |r: &Result<u64, u64>| match r {
        Ok(v) => json!({"value": hex(*v), "fault": Value::Null}),
        Err(cr2) => json!({"value": Value::Null, "fault": hex(*cr2)}),
    };
    let per_cpu: Vec<Value> = aps
        .iter()
        .zip(&before)
        .zip(&after)
        .map(|((&(i, id), b), a)| json!({"cpu": i, "apic_id": id, "before": read(b), "after": read(a)}))
        .collect();
    let j = json!({
        "page": hex(TEST_PAGE),
        "marker": hex(TEST_MARKER),
        "shootdowns": shootdowns,
        "cpus": per_cpu,
    });
    crate::kprintln!("SHOOTDOWN {j}");

    log::info!(
        "smp_test=shootdown: CPU {last} (APIC id {last_id}) reads the unmapped page {TEST_PAGE:#x} without a fix-up"
    );
    let v = AtomicU64::new(0);
    arch_smp::call_on(last, &|| {
        if let Some(x) = arch_smp::touch_unmapped(TEST_PAGE) {
            v.store(x, Ordering::SeqCst);
        }
    })
    .map_err(|e| format!("smp_test=shootdown: {e}"))?;
    Err(format!(
        "smp_test=shootdown: CPU {last} read {:#x} from the unmapped page: a stale TLB entry",
        v.load(Ordering::SeqCst)
    ))
}
