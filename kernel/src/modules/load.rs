//! The probe loop: every module, in table order, is verified, moved to the
//! packing cursor of each class (compact policies), relocated there and
//! probed at that final address; kept modules advance the cursors, failed
//! ones are released and poisoned, and the next module overwrites them.
//!
//! A module the prelinker expected to fail (`link --expect`) is probed
//! where it lies instead: expected failures come last, so when the
//! expectation holds each one fails in place and nothing moves. If one is
//! kept after all, it stays in its slot and the cursors jump past it.

use super::guard::{self, Outcome};
use super::{Module, NAMES, Reason, Resources, Totals, debug, health, image, remap, report, stale};
use crate::arch::tsc;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::checksum::module_checksum;
use modtable::table::Prediction;
use modtable::table::Table;
use modtable::{Class, PerClass};
use reclaim::pack::Cursors;
use reclaim::plan::{Placement, TailUse, plan_class};
use reclaim::policy::Policy;

/// Byte every expunged module's classes are filled with (`int3` in text).
const POISON: u8 = 0xcc;
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
    for i in 0..n {
        step(&table, &mut mods, i, policy, budget_ms, &mut cursors);
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

    measure_memmove(&mut mods);
    run_selftests(&mut mods, budget_ms);
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

fn class_bytes(m: &Module, c: Class, at: PerClass<u64>) -> &'static [u8] {
    // SAFETY: `at[c]` .. + size lies inside the class region (the table was
    // validated against the regions), and nothing writes it meanwhile.
    unsafe { image::alias(at[c], m.placement.size[c] as u64) }
}

fn poison(m: &Module) {
    for c in Class::ALL {
        let len = m.placement.size[c] as u64;
        for at in [m.base[c], m.slot[c]] {
            // SAFETY: an expunged module's bytes at its probe address and in
            // its slot lie above every packing cursor (or are its own slot
            // under keep/holes), so no live module shares them.
            unsafe { image::alias_mut(at, len) }.fill(POISON);
        }
    }
}

fn expunge(m: &mut Module, reason: Reason) {
    log::warn!("module {}: expunged: {reason}", m.name);
    m.expunged = Some(reason);
    poison(m);
}

/// Moves module `i` to the cursors (or leaves it in its slot if
/// `in_place`) and redoes its relocations there; records the time of the
/// copy and of the relocation (with the serialising instruction after it).
fn move_and_relocate(
    table: &Table<'_>,
    mods: &mut [Module],
    i: usize,
    cursors: &Cursors,
    in_place: bool,
) -> Result<(), String> {
    let rec = mods[i].placement;
    let t_copy = tsc::read();
    for c in Class::ALL {
        let size = rec.size[c] as u64;
        let from = mods[i].slot[c];
        let dest = if in_place {
            from
        } else {
            cursors.place(c, size, rec.align[c] as u64)
        };
        if size > 0 && dest != from {
            // SAFETY: both ranges lie in the class's slot region (dest <=
            // slot, both below the region end); the copy is a memmove, and
            // nothing else uses these bytes now.
            unsafe { image::copy_within(from, dest, size) };
            mods[i].bytes_moved += size;
        }
        mods[i].base[c] = dest;
    }
    let t_relocate = tsc::read();
    mods[i].copy_ns = tsc::ticks_to_ns(t_relocate - t_copy);
    // The module's classes at their new addresses, through the alias.
    let b = mods[i].base;
    // SAFETY: each class of this module, at its new address inside its own
    // region (three disjoint ranges); nothing else refers to them meanwhile.
    let mut bytes =
        PerClass(Class::ALL.map(|c| unsafe { image::alias_mut(b[c], rec.size[c] as u64) }));
    let moved = |m: u16, c: Class| {
        let t = &mods[m as usize];
        (m as usize == i || t.kept).then(|| t.base[c].wrapping_sub(t.slot[c]) as i64)
    };
    let redone = table.redo(i, &mut bytes, moved).map_err(|e| match e {
        modtable::table::RedoError::Target(m) => {
            format!("refers to expunged module {}", mods[m as usize].name)
        }
        e => e.to_string(),
    })?;
    mods[i].relocs_redone = redone;
    crate::arch::serialize();
    mods[i].relocate_ns = tsc::ticks_to_ns(tsc::read() - t_relocate);
    Ok(())
}

fn step(
    table: &Table<'_>,
    mods: &mut [Module],
    i: usize,
    policy: Policy,
    budget_ms: u64,
    cursors: &mut Cursors,
) {
    if let Some(&d) = mods[i].deps.iter().find(|&&d| !mods[d].kept) {
        let dep = mods[d].name.to_string();
        expunge(&mut mods[i], Reason::Dependency(dep));
        return;
    }
    let m = &mods[i];
    let t = tsc::read();
    let computed = module_checksum(Class::ALL.map(|c| class_bytes(m, c, m.slot)));
    let stored = m.placement.checksum;
    mods[i].checksum_ns = tsc::ticks_to_ns(tsc::read() - t);
    if computed != stored {
        expunge(&mut mods[i], Reason::Checksum { stored, computed });
        return;
    }
    if policy.moves_modules() {
        let t = tsc::read();
        let in_place = mods[i].placement.predicted == Some(Prediction::Expunged);
        let moved = move_and_relocate(table, mods, i, cursors, in_place);
        mods[i].move_ns = tsc::ticks_to_ns(tsc::read() - t);
        if let Err(e) = moved {
            expunge(&mut mods[i], Reason::Relocation(e));
            return;
        }
    }

    let entry = mods[i].base[Class::Text] + mods[i].placement.probe_off as u64;
    let before = Resources::now();
    // Its per-CPU copies are made inside the leak measurement, so a failed
    // probe whose copies were not all freed shows as a heap leak.
    let (percpu_off, percpu_len) = (mods[i].placement.percpu_off, mods[i].placement.percpu_size);
    let template = mods[i].base[Class::Data] + percpu_off as u64;
    if crate::kapi::percpu::allocate(i, template, percpu_len as u64).is_err() {
        let reason = format!("no heap for {percpu_len} per-CPU bytes on each CPU");
        expunge(&mut mods[i], Reason::Probe("no-memory", reason));
        return;
    }
    let t = tsc::read();
    // SAFETY: `entry` is the probe of a module whose checksum matched and
    // whose relocations were redone for where it now is.
    let outcome = crate::kapi::run_as(i, || unsafe { guard::run(entry, budget_ms) });
    mods[i].probe_ns = tsc::ticks_to_ns(tsc::read() - t);
    if matches!(outcome, Outcome::Returned(0)) {
        let m = &mut mods[i];
        m.kept = true;
        for c in Class::ALL {
            cursors.commit(c, m.base[c], m.placement.size[c] as u64);
        }
        log::info!("module {}: kept ({} us)", m.name, m.probe_ns / 1000);
        return;
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
}

/// Times a plain memmove of each kept module's bytes (all classes, from
/// where they live to a scratch buffer), in this same boot, to compare with
/// its move + relocate time.
fn measure_memmove(mods: &mut [Module]) {
    let max = mods
        .iter()
        .filter(|m| m.kept)
        .map(|m| {
            m.placement
                .size
                .0
                .iter()
                .map(|&s| s as usize)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let mut scratch = alloc::vec![0u8; max];
    for m in mods.iter_mut().filter(|m| m.kept && m.bytes_moved > 0) {
        let t = tsc::read();
        let mut at = 0;
        for c in Class::ALL {
            let len = m.placement.size[c] as usize;
            // SAFETY: the module's live bytes, read through the direct map.
            let src = unsafe { image::alias(m.base[c], len as u64) };
            scratch[at..at + len].copy_from_slice(src);
            at += len;
        }
        m.memmove_ns = tsc::ticks_to_ns(tsc::read() - t);
        core::hint::black_box(&scratch);
    }
}

/// Runs the self-test of every kept module at its final address.
fn run_selftests(mods: &mut [Module], budget_ms: u64) {
    for (i, m) in mods.iter_mut().enumerate() {
        let Some(selftest_off) = m.placement.selftest_off.filter(|_| m.kept) else {
            continue;
        };
        let entry = m.base[Class::Text] + selftest_off as u64;
        // SAFETY: the self-test of a kept module, relocated for where it is.
        let outcome = crate::kapi::run_as(i, || unsafe { guard::run(entry, budget_ms) });
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
