//! The reclaimed-memory report: fills the shared [`report::Report`] with
//! what this boot did, prints its table and its `REPORT` JSON line.

use super::{Module, Totals};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::table::Prediction;
use modtable::{Class, PerClass};
use reclaim::plan::{ClassPlan, page_aligned_bytes};
use report::{
    Classes, Cost, Count, Hex, Mappings, Module as ModuleReport, Outcome, Region, Released, Report,
    RuntimeFault,
};

fn classes<T>(f: impl Fn(Class) -> T) -> Classes<T> {
    Classes::from_fn(|i| f(Class::ALL[i]))
}

fn range(r: (u64, u64)) -> [Hex; 2] {
    [Hex(r.0), Hex(r.1)]
}

fn outcome(p: Prediction) -> Outcome {
    match p {
        Prediction::Kept => Outcome::Kept,
        Prediction::Expunged => Outcome::Expunged,
    }
}

fn mappings(m: &PerClass<(usize, usize)>) -> Mappings {
    Mappings::from_classes(classes(|c| Count {
        k4: m[c].0 as u64,
        m2: m[c].1 as u64,
    }))
}

fn module(m: &Module, mods: &[Module]) -> ModuleReport {
    let size = |c: Class| m.placement.size[c] as u64;
    let mut r = ModuleReport {
        name: m.name.to_string(),
        result: if m.unloaded.is_some() {
            Outcome::Unloaded
        } else if m.kept {
            Outcome::Kept
        } else {
            Outcome::Expunged
        },
        reason: m.expunged.as_ref().map(|r| r.to_string()),
        reason_kind: m.expunged.as_ref().map(|r| r.kind().to_string()),
        depends: m.deps.iter().map(|&d| mods[d].name.to_string()).collect(),
        slot: classes(|c| m.placement.slot_size[c] as u64),
        used: classes(size),
        packed: classes(|c| if m.kept { size(c) } else { 0 }),
        predicted: m.placement.predicted.map(outcome),
        bytes_moved: m.bytes_moved,
        old_addr: classes(|c| Hex(m.slot[c])),
        new_addr: classes(|c| m.kept.then_some(Hex(m.base[c]))),
        relocs_redone: m.relocs_redone as u64,
        probe_ns: m.probe_ns,
        move_ns: m.move_ns(),
        checksum_ns: m.checksum_ns,
        copy_ns: m.copy_ns,
        relocate_ns: m.relocate_ns,
        memmove_ns: m.memmove_ns,
        selftest: m.selftest.as_ref().map(|r| {
            String::from(match r {
                Ok(()) => "passed",
                Err(_) => "failed",
            })
        }),
        selftest_error: m.selftest.as_ref().and_then(|r| r.clone().err()),
        runtime_faults: m
            .runtime_faults
            .iter()
            .map(|f| RuntimeFault {
                place: f.place.clone(),
                kind: f.kind.to_string(),
                reason: f.reason.clone(),
                at: f.at.clone(),
                during: f.during.clone(),
                cpu: f.cpu as u64,
            })
            .collect(),
        released: m.released.map(|r| Released {
            ports: r.ports as u64,
            mmio: r.mmio as u64,
            allocs: r.allocs as u64,
            alloc_bytes: r.alloc_bytes as u64,
            irqs: r.irqs as u64,
            console: r.console,
            devices: r.devices as u64,
        }),
        leak: m.leak,
        percpu: crate::kapi::percpu::packed(m.placement.percpu_size as u64),
        loaded: None,
        bytes_returned: None,
        object: None,
        load_ns: None,
        relocs_applied: None,
        got_entries: None,
        placed: None,
    };
    crate::loader::module_fields(m, &mut r);
    r
}

fn region(p: &ClassPlan, size: u64) -> Region {
    Region {
        size,
        live_end: Hex(p.live_end),
        mapped_bytes: p.mapped.iter().map(|(s, e)| e - s).sum(),
        reclaimed_bytes: p.reclaimed_bytes(),
        mapped: p.mapped.iter().map(|&r| range(r)).collect(),
        freed: p.freed.iter().map(|&r| range(r)).collect(),
        pool: p.pool.map(range),
        heap: p.heap.map(range),
    }
}

/// Boot-cost figures: move + relocate against a plain memmove of the same
/// bytes, for the kept modules that moved.
fn cost(mods: &[Module]) -> Cost {
    let moved: Vec<&Module> = mods.iter().filter(|m| m.kept && m.memmove_ns > 0).collect();
    Cost {
        moved_modules: moved.len() as u64,
        move_relocate_ns: moved.iter().map(|m| m.move_ns()).sum(),
        memmove_ns: moved.iter().map(|m| m.memmove_ns).sum(),
        relocs_redone: moved.iter().map(|m| m.relocs_redone as u64).sum(),
        probe_ns: mods.iter().map(|m| m.probe_ns).sum(),
    }
}

/// Builds the report of this boot.
pub fn build(mods: &[Module], t: &Totals) -> Report {
    let plans = &t.plans;
    let sum =
        |f: &dyn Fn(&ClassPlan) -> u64| -> u64 { Class::ALL.iter().map(|&c| f(&plans[c])).sum() };
    let used = |kept_only: bool| {
        mods.iter()
            .filter(move |m| !kept_only || m.kept)
            .flat_map(|m| m.placement.size.0.iter().map(|&s| s as u64))
    };
    let predicted = mods.iter().filter(|m| m.placement.predicted.is_some());
    let percpu = percpu_bytes(mods);
    let degraded: Vec<String> = mods
        .iter()
        .filter(|m| super::health::problem(m).is_some())
        .map(|m| m.name.to_string())
        .collect();
    Report {
        policy: t.policy.name().to_string(),
        probe_budget_ms: t.budget_ms,
        tsc_hz: crate::arch::tsc::frequency_hz(),
        modules: mods.iter().map(|m| module(m, mods)).collect(),
        kept: mods.iter().filter(|m| m.kept).count() as u64,
        expunged: mods.iter().filter(|m| !m.kept).count() as u64,
        reclaimed_bytes: sum(&|p| p.reclaimed_bytes()),
        freed_bytes: sum(&|p| p.freed_bytes()),
        pool_bytes: sum(&|p| p.accounting.pool),
        heap_bytes: sum(&|p| p.accounting.heap),
        prediction: report::Prediction {
            expected_kept: mods
                .iter()
                .filter(|m| m.placement.predicted == Some(Prediction::Kept))
                .count() as u64,
            as_expected: predicted
                .filter(|m| (m.placement.predicted == Some(Prediction::Kept)) == m.kept)
                .count() as u64,
            bytes_moved: mods.iter().map(|m| m.bytes_moved).sum(),
            relocs_redone: mods.iter().map(|m| m.relocs_redone as u64).sum(),
        },
        packed_bytes: used(true).sum(),
        slot_bytes: mods
            .iter()
            .flat_map(|m| m.placement.slot_size.0.iter().map(|&s| s as u64))
            .sum(),
        page_aligned_bytes: page_aligned_bytes(used(false)),
        page_aligned_kept_bytes: page_aligned_bytes(used(true)),
        regions: classes(|c| region(&plans[c], t.region_size[c])),
        accounting: classes(|c| plans[c].accounting),
        mappings_before: mappings(&t.mappings_before),
        mappings_after: mappings(&t.mappings_after),
        free_frames_before: t.free_frames_before as u64,
        free_frames_after: t.free_frames_after as u64,
        heap_free_before: t.heap_free_before as u64,
        heap_free_after: t.heap_free_after as u64,
        wx_pages: t.wx_pages as u64,
        wx_alias_frames: t.wx_alias_frames,
        console: crate::kapi::module_console_active()
            .map(super::name_of)
            .map(String::from),
        cost: cost(mods),
        phases: {
            let total = |f: fn(&Module) -> u64| mods.iter().map(f).sum::<u64>();
            report::Phases {
                checksum_ns: total(|m| m.checksum_ns),
                copy_ns: total(|m| m.copy_ns),
                relocate_ns: total(|m| m.relocate_ns),
                probe_ns: total(|m| m.probe_ns),
                remap_ns: t.remap_ns,
            }
        },
        boot_to_modules_ns: t.boot_to_modules_ns,
        modules_ns: t.modules_ns,
        boot_ns: crate::arch::tsc::ticks_to_ns(crate::arch::tsc::read()),
        health: String::from(if degraded.is_empty() {
            "ok"
        } else {
            "degraded"
        }),
        degraded,
        cpus: crate::smp::cpus_report(),
        tlb_shootdowns: crate::smp::module_phase_shootdowns(),
        pools: None,
        fresh_pages: None,
        runtime: None,
        refusals: None,
        percpu: Some(percpu),
        percpu_compare: Some(report::PerCpuCompare {
            exact_bytes: percpu.module_bytes * percpu.cpus,
            reserve_8k_bytes: 8192 * percpu.cpus,
            reserve_32k_bytes: 32768u64.saturating_sub(percpu.kernel_bytes) * percpu.cpus,
        }),
        watchdog: Some(crate::watchdog::report()),
    }
}

/// The per-CPU figures: the kernel's part of an area, the kept modules'
/// copies, what the expunged ones' copies gave back.
fn percpu_bytes(mods: &[Module]) -> report::PerCpuBytes {
    let kernel_bytes = crate::arch::percpu::extra_offset() as u64;
    let module_bytes = mods
        .iter()
        .filter(|m| m.kept)
        .map(|m| crate::kapi::percpu::packed(m.placement.percpu_size as u64))
        .sum();
    let cpus = crate::kapi::percpu::cpus() as u64;
    let per_cpu_area_bytes = kernel_bytes + module_bytes;
    report::PerCpuBytes {
        kernel_bytes,
        module_bytes,
        per_cpu_area_bytes,
        cpus,
        total_bytes: cpus * per_cpu_area_bytes,
        freed_bytes: mods.iter().map(|m| m.percpu_freed).sum(),
    }
}

/// The `REPORT` JSON of the current state, `extra` filling in what other
/// parts (the runtime loader) add.
pub fn json_with(mods: &[Module], t: &Totals, extra: &dyn Fn(&mut Report)) -> String {
    let mut r = build(mods, t);
    extra(&mut r);
    r.to_json()
}

/// Prints the table and the `REPORT` line, `extra` filling in what other
/// parts (the runtime loader) add.
pub fn print_with(mods: &[Module], t: &Totals, extra: &dyn Fn(&mut Report)) {
    let mut r = build(mods, t);
    extra(&mut r);
    crate::kprintln!();
    crate::kprint!("{}", report::render(&r));
    crate::kprintln!("{}{}", report::LINE_PREFIX, r.to_json());
}
