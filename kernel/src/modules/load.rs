//! The probe loop: every module, in table order, is moved to the packing
//! cursor of each class (compact policies), its checksum checked there,
//! relocated there and probed at that final address; kept modules advance
//! the cursors, failed ones are released and poisoned, and the next module
//! overwrites them.
//!
//! A module the prelinker expected to fail (`link --expect`) is probed
//! where it lies instead: expected failures come last, so when the
//! expectation holds each one fails in place and nothing moves. If one is
//! kept after all, it stays in its slot and the cursors jump past it.

use super::bytes::{self, Placed};
use super::guard::{self, Outcome};
use super::{Module, NAMES, Reason, Resources, Totals, debug, health, image, remap, report, stale};
use crate::arch::tsc;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::table::Prediction;
use modtable::table::Table;
use modtable::{Class, PerClass};
use reclaim::pack::Cursors;
use reclaim::plan::{Placement, TailUse, plan_class};
use reclaim::policy::Policy;

/// Default probe time budget.
const DEFAULT_BUDGET_MS: u64 = 100;

fn options() -> Result<(Policy, u64), String> {
    let policy = match crate::cmdline::get("reclaim") {
        None => Policy::Compact,
        Some(s) => Policy::parse(s).ok_or_else(|| {
            format!("reclaim={s}: expected keep, holes, compact or compact-split")
        })?,
    };
    let budget_ms = match crate::cmdline::get("probe_budget_ms") {
        None => DEFAULT_BUDGET_MS,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("probe_budget_ms={s}: expected a positive number"))?,
    };
    Ok((policy, budget_ms))
}

/// Runs the whole module phase of boot and prints the report.
pub fn boot() -> Result<(), String> {
    let t_start = tsc::read();
    let table = Table::parse(image::modtable_area()).map_err(|e| e.to_string())?;
    let h = *table.header();
    let regions = image::regions();
    for c in Class::ALL {
        let (s, e) = regions[c];
        if h.region_base[c] != s || h.region_size[c] != e - s {
            return Err(format!(
                "module table was prelinked for a {} region at {:#x} (+{:#x}), this kernel has it at {s:#x} (+{:#x})",
                c.name(),
                h.region_base[c],
                h.region_size[c],
                e - s
            ));
        }
    }
    let (policy, budget_ms) = options()?;
    image::open_alias().map_err(|e| format!("cannot map the module-phase alias: {e}"))?;
    let n = table.len();
    NAMES.call_once(|| (0..n).map(|i| table.name(&table.module(i))).collect());
    crate::kapi::init();
    crate::kapi::resources::init_modules(n);
    crate::kapi::percpu::init(n);
    guard::install();
    log::info!(
        "modules: {n} in the table, policy {}, probe budget {budget_ms} ms",
        policy.name()
    );

    let mut mods: Vec<Module> = (0..n)
        .map(|i| {
            let rec = table.module(i);
            let slot =
                PerClass(Class::ALL.map(|c| h.region_base[c] + rec.placement.slot_off[c] as u64));
            let deps = table.deps(&rec).map(usize::from).collect();
            Module::new(table.name(&rec), rec.placement, deps, slot)
        })
        .collect();

    let ranges = image::class_ranges();
    let mappings_before = remap::count_slot_mappings(&mods, &ranges);
    let mut cursors = Cursors::new(h.region_base);
    // The kept modules' tokens, for their self-tests.
    let mut placed: Vec<Option<Placed>> = Vec::with_capacity(n);
    for i in 0..n {
        placed.push(step(&table, &mut mods, i, policy, budget_ms, &mut cursors));
        health::collect(&mut mods, "probe");
    }

    let plans = PerClass(Class::ALL.map(|c| {
        let placements: Vec<Placement> = mods
            .iter()
            .map(|m| Placement {
                slot_start: m.slot[c],
                slot_size: m.placement.slot_size[c] as u64,
                used: m.placement.size[c] as u64,
                at: m.base[c],
                kept: m.kept,
            })
            .collect();
        let tail = if c == Class::Data {
            TailUse::Heap
        } else {
            TailUse::Pool
        };
        plan_class(policy, ranges[c], tail, &placements)
    }));
    stale::record(&mods);
    let t_remap = tsc::read();
    let applied = remap::apply(&plans)?;
    let remap_ns = tsc::ticks_to_ns(tsc::read() - t_remap);
    let modules_ns = tsc::ticks_to_ns(tsc::read() - t_start);
    debug::publish(&mods);

    bytes::measure_memmove(&mut mods);
    run_selftests(&mut mods, &placed, budget_ms);
    health::collect(&mut mods, "self-test");
    health::record(&mods);

    let totals = Totals {
        policy,
        budget_ms,
        mappings_before,
        mappings_after: applied.mappings_after,
        free_frames_before: applied.free_frames_before,
        free_frames_after: applied.free_frames_after,
        heap_free_before: applied.heap_free_before,
        heap_free_after: applied.heap_free_after,
        wx_pages: applied.wx_pages,
        wx_alias_frames: applied.wx_alias_frames,
        plans,
        boot_to_modules_ns: tsc::ticks_to_ns(t_start),
        modules_ns,
        remap_ns,
        region_size: h.region_size,
    };
    crate::loader::init(&totals.plans);
    report::print_with(&mods, &totals, &crate::loader::report_extra);
    stale::maybe_call(&mods, totals.plans[Class::Text].pool)?;
    crate::loader::adopt(mods, totals);
    Ok(())
}

fn expunge(m: &mut Module, reason: Reason) {
    log::warn!("module {}: expunged: {reason}", m.name);
    m.expunged = Some(reason);
    bytes::poison(m);
}

/// Places (under the compact policies), verifies there and probes module
/// `i`; keeps or expunges it. Returns its token if it was kept.
fn step(
    table: &Table<'_>,
    mods: &mut [Module],
    i: usize,
    policy: Policy,
    budget_ms: u64,
    cursors: &mut Cursors,
) -> Option<Placed> {
    if let Some(&d) = mods[i].deps.iter().find(|&&d| !mods[d].kept) {
        let dep = mods[d].name.to_string();
        expunge(&mut mods[i], Reason::Dependency(dep));
        return None;
    }
    // Under the compact policies the module is moved first and checked
    // where it lands (see `bytes`); its relocations are redone only once
    // its checksum matched.
    let moves = policy.moves_modules();
    if moves {
        let in_place = mods[i].placement.predicted == Some(Prediction::Expunged);
        bytes::move_to_cursors(mods, i, cursors, in_place);
    }
    let checked = match bytes::verify(mods, i) {
        Ok(c) => c,
        Err((stored, computed)) => {
            expunge(&mut mods[i], Reason::Checksum { stored, computed });
            return None;
        }
    };
    let placed = if moves {
        match bytes::relocate(checked, table, mods) {
            Ok(p) => p,
            Err(e) => {
                expunge(&mut mods[i], Reason::Relocation(e));
                return None;
            }
        }
    } else {
        checked.in_slot(mods)
    };

    let before = Resources::now();
    // Its per-CPU copies are made inside the leak measurement, so a failed
    // probe whose copies were not all freed shows as a heap leak.
    let (percpu_off, percpu_len) = (mods[i].placement.percpu_off, mods[i].placement.percpu_size);
    let template = mods[i].base[Class::Data] + percpu_off as u64;
    if crate::kapi::percpu::allocate(i, template, percpu_len as u64).is_err() {
        let reason = format!("no heap for {percpu_len} per-CPU bytes on each CPU");
        expunge(&mut mods[i], Reason::Probe("no-memory", reason));
        return None;
    }
    let t = tsc::read();
    let outcome = bytes::probe(&placed, mods, budget_ms);
    mods[i].probe_ns = tsc::ticks_to_ns(tsc::read() - t);
    if matches!(outcome, Outcome::Returned(0)) {
        let m = &mut mods[i];
        m.kept = true;
        for c in Class::ALL {
            cursors.commit(c, m.base[c], m.placement.size[c] as u64);
        }
        log::info!("module {}: kept ({} us)", m.name, m.probe_ns / 1000);
        return Some(placed);
    }
    // Release and measure before allocating anything for the report,
    // so the deltas show only what the module itself left behind.
    let failure = guard::take_failure();
    let released = crate::kapi::release(i);
    let percpu_freed = crate::kapi::percpu::free(i);
    let after = Resources::now();
    let reason = Reason::of_probe(outcome, failure);
    let m = &mut mods[i];
    m.released = Some(released);
    m.percpu_freed = percpu_freed;
    m.leak = Some(before.leak_to(after));
    expunge(m, reason);
    None
}

/// Runs the self-test of every kept module (`placed`: their tokens) at its
/// final address.
fn run_selftests(mods: &mut [Module], placed: &[Option<Placed>], budget_ms: u64) {
    for (i, p) in placed.iter().enumerate() {
        let Some(outcome) = p.as_ref().and_then(|p| bytes::selftest(p, mods, budget_ms)) else {
            continue;
        };
        let m = &mut mods[i];
        let result = match outcome {
            Outcome::Returned(0) => Ok(()),
            Outcome::Returned(code) => Err(match guard::take_failure() {
                Some((_, msg)) => msg.as_str().to_string(),
                None => format!("returned {code}"),
            }),
            Outcome::Aborted(a) => Err(a.to_string()),
        };
        match &result {
            Ok(()) => log::info!("module {}: selftest passed at its final address", m.name),
            Err(e) => log::error!("module {}: selftest failed: {e}", m.name),
        }
        m.selftest = Some(result);
    }
}
