//! What the loader adds to the report: per-module keys, and `pools`,
//! `fresh_pages`, `runtime` and `refusals`; the `REPORT` line printed
//! after each `insmod` and `rmmod`, with W^X and mappings measured anew.

use super::{Loader, PoolFigures, View, mappings, place};
use crate::mm::paging;
use crate::modules::Module;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::{Class, PerClass};
use report::{
    Classes, Count, FreshPage, HeapTail, Hex, Placed, Pool, Refusal, Report, RuntimeTotals,
};

/// Per-module fields of the report: `bytes_returned` (to the pools,
/// poisoned), `loaded`, and how a runtime module was loaded.
pub fn module_fields(m: &Module, r: &mut report::Module) {
    // Unloaded modules and runtime modules whose probe failed gave their
    // bytes back to the pools, filled with int3 first.
    r.bytes_returned = Some(m.unloaded.is_some() || (m.runtime.is_some() && m.expunged.is_some()));
    let Some(rt) = &m.runtime else {
        r.loaded = Some(String::from("builtin"));
        return;
    };
    r.loaded = Some(String::from("runtime"));
    r.object = Some(rt.object.clone());
    r.load_ns = Some(rt.load_ns);
    r.relocs_applied = Some(rt.relocs as u64);
    r.got_entries = Some(rt.got_entries as u64);
    r.placed = Some(Classes::from_fn(|i| {
        rt.placed[Class::ALL[i]].map(|p| Placed {
            addr: Hex(p.addr),
            bytes: p.len,
            taken: p.taken,
            within: p.at.name().to_string(),
        })
    }));
}

impl Loader {
    /// Refreshes the figures that change after boot: W^X, mappings, and
    /// the callback faults (IRQ handlers, console writes) the guard has
    /// recorded since the last report.
    pub(super) fn refresh(&mut self) {
        crate::modules::health::collect(&mut self.mods, "probe");
        if let Some(t) = self.totals.as_mut() {
            t.wx_pages = paging::count_wx_pages();
            t.wx_alias_frames = paging::wx_alias_frames();
            t.mappings_after = PerClass(Class::ALL.map(|c| {
                let (s, e) = t.plans[c].live();
                paging::count_mappings(s, e - s)
            }));
        }
    }

    /// Prints a one-line summary and the `REPORT` line.
    pub(super) fn print_report(&mut self) {
        self.refresh();
        let Some(t) = &self.totals else {
            return;
        };
        let view = View {
            mods: &self.mods,
            totals: t,
            placer: &self.placer,
            class_mapped: &self.mapped,
        };
        let f = |c| view.pool(c);
        crate::kprintln!(
            "loader: pools text {}/{} used, rodata {}/{}, data {}/{}; {} fresh pages; W+X pages {}, W^X alias frames {}",
            f(Class::Text).used,
            f(Class::Text).size,
            f(Class::Rodata).used,
            f(Class::Rodata).size,
            f(Class::Data).used,
            f(Class::Data).size,
            self.placer.fresh.len(),
            t.wx_pages,
            t.wx_alias_frames
        );
        crate::kprintln!(
            "{}{}",
            report::LINE_PREFIX,
            crate::modules::json_with(&self.mods, t, &|r| self.fill(r))
        );
    }

    /// Fills in the loader's part of a report: `pools`, `fresh_pages`,
    /// `runtime`, `refusals`.
    pub(super) fn fill(&self, r: &mut Report) {
        r.pools = Some(Classes::from_fn(|i| {
            let c = Class::ALL[i];
            let p = &self.placer.pools[c];
            let mut f = PoolFigures {
                size: p.size(),
                used: p.used(),
                free: p.free_bytes(),
            };
            let arena = if c == Class::Data {
                crate::mm::heap::arena()
            } else {
                None
            };
            if let Some((s, e, used, free)) = arena {
                f.size += e - s;
                f.used += used as u64;
                f.free += free as u64;
            }
            let (k4, m2) = mappings(&self.mapped[c], &self.placer.fresh, c);
            Pool {
                size: f.size,
                used: f.used,
                free: f.free,
                largest_free: p.largest_free(),
                fresh_pages: self.placer.fresh.iter().filter(|x| x.class == c).count() as u64,
                heap_tail: arena.map(|(s, e, used, free)| HeapTail {
                    range: [Hex(s), Hex(e)],
                    used: used as u64,
                    free: free as u64,
                }),
                mappings: Count {
                    k4: k4 as u64,
                    m2: m2 as u64,
                },
            }
        }));
        r.fresh_pages = Some(
            self.placer
                .fresh
                .iter()
                .map(|f| FreshPage {
                    class: f.class.name().to_string(),
                    addr: Hex(f.va),
                    phys: Hex(f.phys),
                    size: f.len,
                    flags: format!("{:?}", place::class_flags(f.class)),
                })
                .collect(),
        );
        let runtime = |pred: &dyn Fn(&Module) -> bool| {
            self.mods
                .iter()
                .filter(|m| m.runtime.is_some() && pred(m))
                .count() as u64
        };
        r.runtime = Some(RuntimeTotals {
            loaded: runtime(&|m| m.kept),
            expunged: runtime(&|m| m.expunged.is_some()),
            unloaded: self.mods.iter().filter(|m| m.unloaded.is_some()).count() as u64,
            refused: self.refusals.len() as u64,
            irq_handlers: crate::kapi::registered_irqs() as u64,
            free_frames: crate::mm::frames::free_frames(),
        });
        r.refusals = Some(
            self.refusals
                .iter()
                .map(|x| Refusal {
                    object: x.object.clone(),
                    kind: x.kind.to_string(),
                    error: x.error.clone(),
                })
                .collect::<Vec<_>>(),
        );
    }
}
