//! The reclaimed-memory report: a table on the console and one `REPORT`
//! line of JSON with the same figures, all taken from what this boot did.

use super::{Module, Totals};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use modtable::Class;
use reclaim::json::Json;
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

fn mappings(j: &mut Json, key: &str, m: (usize, usize)) {
    j.key(key)
        .begin_object()
        .key("4k")
        .u64(m.0 as u64)
        .key("2m")
        .u64(m.1 as u64)
        .end_object();
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
    per_class_addr(j, "old_addr", |c| Some(m.slot[c]));
    per_class_addr(j, "new_addr", |c| m.kept.then_some(m.base[c]));
    j.key("relocs_redone").u64(m.relocs_redone as u64);
    j.key("probe_ns").u64(m.probe_ns);
    j.key("move_ns").u64(m.move_ns);
    j.key("memmove_ns").u64(m.memmove_ns);
    let (selftest, selftest_error) = match &m.selftest {
        None => (None, None),
        Some(Ok(())) => (Some("passed"), None),
        Some(Err(e)) => (Some("failed"), Some(e.as_str())),
    };
    j.key("selftest").opt_str(selftest);
    j.key("selftest_error").opt_str(selftest_error);
    j.key("runtime_faults").begin_array();
    for f in &m.runtime_faults {
        j.begin_object();
        j.key("where").str(&f.place);
        j.key("kind").str(f.kind);
        j.key("reason").str(&f.reason);
        j.key("at").opt_str(f.at.as_deref());
        j.key("during").opt_str(f.during.as_deref());
        j.end_object();
    }
    j.end_array();
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
    let sum = |f: &dyn Fn(&reclaim::plan::RegionPlan) -> i64| -> i64 {
        Class::ALL.iter().map(|&c| f(&plans[c])).sum()
    };
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
    let degraded: Vec<&str> = mods
        .iter()
        .filter(|m| super::health::problem(m).is_some())
        .map(|m| m.name)
        .collect();
    j.key("health").str(if degraded.is_empty() {
        "ok"
    } else {
        "degraded"
    });
    j.key("degraded").begin_array();
    for name in degraded {
        j.str(name);
    }
    j.end_array();
    j.key("expunged")
        .u64(mods.iter().filter(|m| !m.kept).count() as u64);
    j.key("reclaimed_bytes")
        .i64(sum(&|p| p.reclaimed_bytes() as i64));
    j.key("failed_bytes").i64(sum(&|p| p.failed_bytes as i64));
    j.key("padding_bytes").i64(sum(&|p| p.padding_bytes));
    j.key("tail_bytes").i64(sum(&|p| p.tail_bytes as i64));
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
        j.key("live_bytes")
            .u64(p.live.iter().map(|(s, e)| e - s).sum());
        j.key("reclaimed_bytes").u64(p.reclaimed_bytes());
        j.key("failed_bytes").u64(p.failed_bytes);
        j.key("padding_bytes").i64(p.padding_bytes);
        j.key("tail_bytes").u64(p.tail_bytes);
        for (key, ranges) in [("live", &p.live), ("freed", &p.freed)] {
            j.key(key).begin_array();
            for &(s, e) in ranges.iter() {
                j.begin_array().str(&hex(s)).str(&hex(e)).end_array();
            }
            j.end_array();
        }
        j.end_object();
    }
    j.end_object();
    mappings(&mut j, "mappings_before", t.mappings_before);
    mappings(&mut j, "mappings_after", t.mappings_after);
    j.key("free_frames_before").u64(t.free_frames_before as u64);
    j.key("free_frames_after").u64(t.free_frames_after as u64);
    j.key("wx_pages").u64(t.wx_pages as u64);
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
        "{:<16} {:<8} {:>15} {:>15} {:>15} {:>19} {:>19} {:>6} {:>9} {:<8} reason",
        "module",
        "result",
        "text slot>pack",
        "rodata",
        "data",
        "old text",
        "new text",
        "relocs",
        "probe us",
        "selftest"
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
        let reason = match &m.expunged {
            Some(r) => format!("{r}"),
            None => super::health::problem(m).unwrap_or_default(),
        };
        let selftest = match &m.selftest {
            None => "-",
            Some(Ok(())) => "ok",
            Some(Err(_)) => "FAIL",
        };
        kprintln!(
            "{:<16} {:<8} {:>15} {:>15} {:>15} {:>19} {:>19} {:>6} {:>9} {:<8} {}",
            m.name,
            if m.kept { "kept" } else { "expunged" },
            cls(Class::Text),
            cls(Class::Rodata),
            cls(Class::Data),
            hex(m.slot[Class::Text]),
            new,
            m.relocs_redone,
            m.probe_ns / 1000,
            selftest,
            reason
        );
    }
    let p = &t.plans;
    let total = |f: &dyn Fn(&reclaim::plan::RegionPlan) -> i64| -> i64 {
        Class::ALL.iter().map(|&c| f(&p[c])).sum()
    };
    kprintln!(
        "reclaimed {} bytes: failed modules {}, padding {}, unused tail {}",
        total(&|r| r.reclaimed_bytes() as i64),
        total(&|r| r.failed_bytes as i64),
        total(&|r| r.padding_bytes),
        total(&|r| r.tail_bytes as i64)
    );
    kprintln!(
        "free frames {} -> {}; mappings over live module bytes: {}x4K+{}x2M before, {}x4K+{}x2M after; W+X pages {}",
        t.free_frames_before,
        t.free_frames_after,
        t.mappings_before.0,
        t.mappings_before.1,
        t.mappings_after.0,
        t.mappings_after.1,
        t.wx_pages
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
