//! The reclaimed-memory report: a table on the console and one `REPORT`
//! line of JSON with the same figures, all taken from what this boot did.

use super::{Module, Totals};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use modtable::table::Prediction;
use modtable::{Class, PerClass};
use reclaim::json::Json;
use reclaim::plan::ClassPlan;
use reclaim::plan::page_aligned_bytes;

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn per_class(j: &mut Json, key: &str, f: impl Fn(Class) -> u64) {
    j.key(key).begin_object();
    for c in Class::ALL {
        j.key(c.name()).u64(f(c));
    }
    j.end_object();
}

fn per_class_addr(j: &mut Json, key: &str, f: impl Fn(Class) -> Option<u64>) {
    j.key(key).begin_object();
    for c in Class::ALL {
        match f(c) {
            Some(a) => j.key(c.name()).str(&hex(a)),
            None => j.key(c.name()).null(),
        };
    }
    j.end_object();
}

fn total(m: &PerClass<(usize, usize)>) -> (usize, usize) {
    Class::ALL
        .iter()
        .fold((0, 0), |a, &c| (a.0 + m[c].0, a.1 + m[c].1))
}

/// `{"4k": n, "2m": n, "text": {"4k", "2m"}, "rodata": ..., "data": ...}`:
/// the total first, then per class.
fn mappings(j: &mut Json, key: &str, m: &PerClass<(usize, usize)>) {
    let t = total(m);
    j.key(key).begin_object();
    j.key("4k").u64(t.0 as u64).key("2m").u64(t.1 as u64);
    for c in Class::ALL {
        j.key(c.name())
            .begin_object()
            .key("4k")
            .u64(m[c].0 as u64)
            .key("2m")
            .u64(m[c].1 as u64)
            .end_object();
    }
    j.end_object();
}

fn accounting(j: &mut Json, plans: &PerClass<ClassPlan>) {
    j.key("accounting").begin_object();
    for c in Class::ALL {
        let a = plans[c].accounting;
        let (s, e) = plans[c].range.map_or((0, 0), |r| (r.start, r.end));
        j.key(c.name()).begin_object();
        j.key("range")
            .begin_array()
            .str(&hex(s))
            .str(&hex(e))
            .end_array();
        for (k, v) in [
            ("size", a.size),
            ("kernel", a.kernel),
            ("kept", a.kept),
            ("failed", a.failed),
            ("padding", a.padding),
            ("freed", a.freed),
            ("pool", a.pool),
            ("heap", a.heap),
        ] {
            j.key(k).u64(v);
        }
        j.end_object();
    }
    j.end_object();
}

fn module_json(j: &mut Json, m: &Module, mods: &[Module]) {
    j.begin_object();
    j.key("name").str(m.name);
    j.key("result")
        .str(if m.kept { "kept" } else { "expunged" });
    let reason = m.expunged.as_ref().map(|r| format!("{r}"));
    j.key("reason").opt_str(reason.as_deref());
    j.key("reason_kind")
        .opt_str(m.expunged.as_ref().map(|r| r.kind()));
    j.key("depends").begin_array();
    for &d in &m.deps {
        j.str(mods[d].name);
    }
    j.end_array();
    per_class(j, "slot", |c| m.rec.slot_size[c] as u64);
    per_class(j, "used", |c| m.rec.size[c] as u64);
    per_class(
        j,
        "packed",
        |c| if m.kept { m.rec.size[c] as u64 } else { 0 },
    );
    j.key("predicted")
        .opt_str(m.predicted.map(Prediction::name));
    j.key("bytes_moved").u64(m.bytes_moved);
    per_class_addr(j, "old_addr", |c| Some(m.slot[c]));
    per_class_addr(j, "new_addr", |c| m.kept.then_some(m.base[c]));
    j.key("relocs_redone").u64(m.relocs_redone as u64);
    j.key("probe_ns").u64(m.probe_ns);
    j.key("move_ns").u64(m.move_ns);
    j.key("checksum_ns").u64(m.checksum_ns);
    j.key("copy_ns").u64(m.copy_ns);
    j.key("relocate_ns").u64(m.relocate_ns);
    j.key("memmove_ns").u64(m.memmove_ns);
    match &m.selftest {
        None => j.key("selftest").null(),
        Some(Ok(())) => j.key("selftest").str("passed"),
        Some(Err(e)) => j.key("selftest").str(&format!("failed: {e}")),
    };
    match &m.released {
        None => j.key("released").null(),
        Some(r) => j
            .key("released")
            .begin_object()
            .key("ports")
            .u64(r.ports as u64)
            .key("mmio")
            .u64(r.mmio as u64)
            .key("allocs")
            .u64(r.allocs as u64)
            .key("alloc_bytes")
            .u64(r.alloc_bytes as u64)
            .key("irqs")
            .u64(r.irqs as u64)
            .key("console")
            .bool(r.console)
            .key("devices")
            .u64(r.devices as u64)
            .end_object(),
    };
    match &m.leak {
        None => j.key("leak").null(),
        Some(l) => j
            .key("leak")
            .begin_object()
            .key("heap_bytes")
            .i64(l.heap_bytes)
            .key("frames")
            .i64(l.frames)
            .key("irqs")
            .i64(l.irqs)
            .end_object(),
    };
    j.end_object();
}

/// Boot-cost figures: move + relocate against a plain memmove of the same
/// bytes (kept modules that moved), and the loader's share of boot.
struct Cost {
    moved: u64,
    move_ns: u64,
    memmove_ns: u64,
    relocs: u64,
    probe_ns: u64,
}

fn cost(mods: &[Module]) -> Cost {
    let moved: Vec<&Module> = mods.iter().filter(|m| m.kept && m.memmove_ns > 0).collect();
    Cost {
        moved: moved.len() as u64,
        move_ns: moved.iter().map(|m| m.move_ns).sum(),
        memmove_ns: moved.iter().map(|m| m.memmove_ns).sum(),
        relocs: moved.iter().map(|m| m.relocs_redone as u64).sum(),
        probe_ns: mods.iter().map(|m| m.probe_ns).sum(),
    }
}

/// `a / b` with two decimals, as text (no floating point in the kernel).
fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return String::from("n/a");
    }
    let x100 = (a as u128 * 100 / b as u128) as u64;
    format!("{}.{:02}", x100 / 100, x100 % 100)
}

/// Builds the JSON report.
pub fn json(mods: &[Module], t: &Totals) -> String {
    let plans = &t.plans;
    let sum =
        |f: &dyn Fn(&ClassPlan) -> i64| -> i64 { Class::ALL.iter().map(|&c| f(&plans[c])).sum() };
    let mut j = Json::new();
    j.begin_object();
    j.key("policy").str(t.policy.name());
    j.key("probe_budget_ms").u64(t.budget_ms);
    j.key("tsc_hz").u64(crate::arch::tsc::frequency_hz());
    j.key("modules").begin_array();
    for m in mods {
        module_json(&mut j, m, mods);
    }
    j.end_array();
    j.key("kept")
        .u64(mods.iter().filter(|m| m.kept).count() as u64);
    j.key("expunged")
        .u64(mods.iter().filter(|m| !m.kept).count() as u64);
    j.key("reclaimed_bytes")
        .i64(sum(&|p| p.reclaimed_bytes() as i64));
    j.key("freed_bytes").i64(sum(&|p| p.freed_bytes() as i64));
    j.key("pool_bytes").i64(sum(&|p| p.accounting.pool as i64));
    j.key("heap_bytes").i64(sum(&|p| p.accounting.heap as i64));
    let predicted: Vec<&Module> = mods.iter().filter(|m| m.predicted.is_some()).collect();
    j.key("prediction")
        .begin_object()
        .key("expected_kept")
        .u64(
            mods.iter()
                .filter(|m| m.predicted == Some(Prediction::Kept))
                .count() as u64,
        )
        .key("as_expected")
        .u64(
            predicted
                .iter()
                .filter(|m| (m.predicted == Some(Prediction::Kept)) == m.kept)
                .count() as u64,
        )
        .key("bytes_moved")
        .u64(mods.iter().map(|m| m.bytes_moved).sum())
        .key("relocs_redone")
        .u64(mods.iter().map(|m| m.relocs_redone as u64).sum())
        .end_object();
    let used = |kept_only: bool| {
        mods.iter()
            .filter(move |m| !kept_only || m.kept)
            .flat_map(|m| m.rec.size.0.iter().map(|&s| s as u64))
    };
    j.key("packed_bytes").u64(used(true).sum());
    j.key("slot_bytes").u64(
        mods.iter()
            .flat_map(|m| m.rec.slot_size.0.iter().map(|&s| s as u64))
            .sum(),
    );
    j.key("page_aligned_bytes")
        .u64(page_aligned_bytes(used(false)));
    j.key("page_aligned_kept_bytes")
        .u64(page_aligned_bytes(used(true)));
    j.key("regions").begin_object();
    for c in Class::ALL {
        let p = &plans[c];
        j.key(c.name()).begin_object();
        j.key("size").u64(t.region_size[c]);
        j.key("live_end").str(&hex(p.live_end));
        j.key("mapped_bytes")
            .u64(p.mapped.iter().map(|(s, e)| e - s).sum());
        j.key("reclaimed_bytes").u64(p.reclaimed_bytes());
        for (key, ranges) in [("mapped", &p.mapped), ("freed", &p.freed)] {
            j.key(key).begin_array();
            for &(s, e) in ranges.iter() {
                j.begin_array().str(&hex(s)).str(&hex(e)).end_array();
            }
            j.end_array();
        }
        for (key, r) in [("pool", p.pool), ("heap", p.heap)] {
            match r {
                Some((s, e)) => j
                    .key(key)
                    .begin_array()
                    .str(&hex(s))
                    .str(&hex(e))
                    .end_array(),
                None => j.key(key).null(),
            };
        }
        j.end_object();
    }
    j.end_object();
    accounting(&mut j, plans);
    mappings(&mut j, "mappings_before", &t.mappings_before);
    mappings(&mut j, "mappings_after", &t.mappings_after);
    j.key("free_frames_before").u64(t.free_frames_before as u64);
    j.key("free_frames_after").u64(t.free_frames_after as u64);
    j.key("heap_free_before").u64(t.heap_free_before as u64);
    j.key("heap_free_after").u64(t.heap_free_after as u64);
    j.key("wx_pages").u64(t.wx_pages as u64);
    j.key("wx_alias_frames").u64(t.wx_alias_frames);
    let console = crate::kapi::module_console_active().map(super::name_of);
    j.key("console").opt_str(console);
    let k = cost(mods);
    j.key("cost")
        .begin_object()
        .key("moved_modules")
        .u64(k.moved)
        .key("move_relocate_ns")
        .u64(k.move_ns)
        .key("memmove_ns")
        .u64(k.memmove_ns)
        .key("relocs_redone")
        .u64(k.relocs)
        .key("probe_ns")
        .u64(k.probe_ns)
        .end_object();
    // The module phase split by step, summed over modules (copy is the
    // move to the packing cursor; remap is once per boot).
    let total = |f: fn(&Module) -> u64| mods.iter().map(f).sum::<u64>();
    j.key("phases")
        .begin_object()
        .key("checksum_ns")
        .u64(total(|m| m.checksum_ns))
        .key("copy_ns")
        .u64(total(|m| m.copy_ns))
        .key("relocate_ns")
        .u64(total(|m| m.relocate_ns))
        .key("probe_ns")
        .u64(total(|m| m.probe_ns))
        .key("remap_ns")
        .u64(t.remap_ns)
        .end_object();
    j.key("boot_to_modules_ns").u64(t.boot_to_modules_ns);
    j.key("modules_ns").u64(t.modules_ns);
    j.key("boot_ns")
        .u64(crate::arch::tsc::ticks_to_ns(crate::arch::tsc::read()));
    j.end_object();
    j.finish()
}

/// Prints the table and the `REPORT` line.
pub fn print(mods: &[Module], t: &Totals) {
    use crate::kprintln;
    kprintln!();
    kprintln!("Reclaimed-memory report (policy {})", t.policy.name());
    kprintln!(
        "{:<16} {:<8} {:<8} {:>15} {:>15} {:>15} {:>19} {:>19} {:>6} {:>6} {:>9}  reason",
        "module",
        "result",
        "expected",
        "text slot>pack",
        "rodata",
        "data",
        "old text",
        "new text",
        "moved",
        "relocs",
        "probe us"
    );
    for m in mods {
        let cls = |c: Class| {
            let packed = if m.kept { m.rec.size[c] } else { 0 };
            format!("{}>{}", m.rec.slot_size[c], packed)
        };
        let new = if m.kept {
            hex(m.base[Class::Text])
        } else {
            String::from("-")
        };
        let reason = m
            .expunged
            .as_ref()
            .map(|r| format!("{r}"))
            .unwrap_or_default();
        kprintln!(
            "{:<16} {:<8} {:<8} {:>15} {:>15} {:>15} {:>19} {:>19} {:>6} {:>6} {:>9}  {}",
            m.name,
            if m.kept { "kept" } else { "expunged" },
            m.predicted.map_or("-", Prediction::name),
            cls(Class::Text),
            cls(Class::Rodata),
            cls(Class::Data),
            hex(m.slot[Class::Text]),
            new,
            m.bytes_moved,
            m.relocs_redone,
            m.probe_ns / 1000,
            reason
        );
    }
    for c in Class::ALL {
        let p = &t.plans[c];
        let a = p.accounting;
        let (s, e) = p.range.map_or((0, 0), |r| (r.start, r.end));
        kprintln!(
            "{:<6} {:#x}..{:#x} {} bytes: kernel {}, kept {}, failed {}, padding {}, freed {}, pool {}, heap {}",
            c.name(),
            s,
            e,
            a.size,
            a.kernel,
            a.kept,
            a.failed,
            a.padding,
            a.freed,
            a.pool,
            a.heap
        );
    }
    let sum =
        |f: &dyn Fn(&ClassPlan) -> u64| -> u64 { Class::ALL.iter().map(|&c| f(&t.plans[c])).sum() };
    let (b, a) = (total(&t.mappings_before), total(&t.mappings_after));
    kprintln!(
        "reclaimed {} bytes: freed {} to the frame allocator, {} to the heap; pools {} bytes; free frames {} -> {}, heap free {} -> {}",
        sum(&|p| p.reclaimed_bytes()),
        sum(&|p| p.freed_bytes()),
        sum(&|p| p.accounting.heap),
        sum(&|p| p.accounting.pool),
        t.free_frames_before,
        t.free_frames_after,
        t.heap_free_before,
        t.heap_free_after
    );
    kprintln!(
        "mappings over kernel + live module bytes: {}x4K+{}x2M before, {}x4K+{}x2M after; W+X pages {}, W^X alias frames {}",
        b.0,
        b.1,
        a.0,
        a.1,
        t.wx_pages,
        t.wx_alias_frames
    );
    let moved: u64 = mods.iter().map(|m| m.bytes_moved).sum();
    let redone: u64 = mods.iter().map(|m| m.relocs_redone as u64).sum();
    kprintln!(
        "prediction: {} of {} modules as expected; {} bytes moved, {} relocations redone",
        mods.iter()
            .filter(|m| m
                .predicted
                .is_some_and(|p| (p == Prediction::Kept) == m.kept))
            .count(),
        mods.iter().filter(|m| m.predicted.is_some()).count(),
        moved,
        redone
    );
    let k = cost(mods);
    let boot_ns = crate::arch::tsc::ticks_to_ns(crate::arch::tsc::read());
    kprintln!(
        "boot cost: move+relocate {} us for {} moved modules, memmove of the same bytes {} us (ratio {}); {} relocations, {} ns each; probes {} us; module phase {} us = {}% of {} us boot",
        k.move_ns / 1000,
        k.moved,
        k.memmove_ns / 1000,
        ratio(k.move_ns, k.memmove_ns),
        k.relocs,
        k.move_ns.checked_div(k.relocs).unwrap_or(0),
        k.probe_ns / 1000,
        t.modules_ns / 1000,
        ratio(t.modules_ns * 100, boot_ns),
        boot_ns / 1000
    );
    kprintln!("REPORT {}", json(mods, t));
}
