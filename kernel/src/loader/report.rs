//! What the loader adds to the report: per-module keys, and `pools`,
//! `fresh_pages`, `runtime` and `refusals`; the `REPORT` line printed
//! after each `insmod` and `rmmod`, with W^X and mappings measured anew.

use super::{Loader, PoolFigures, View, mappings, place};
use crate::mm::paging;
use crate::modules::Module;
use alloc::format;
use modtable::{Class, PerClass};
use reclaim::json::Json;

/// Per-module keys of the report: `bytes_returned` (to the pools,
/// poisoned), `loaded`, and how a runtime module was loaded.
pub fn module_json(j: &mut Json, m: &Module) {
    // Unloaded modules and runtime modules whose probe failed gave their
    // bytes back to the pools, filled with int3 first.
    let returned = m.unloaded.is_some() || (m.runtime.is_some() && m.expunged.is_some());
    j.key("bytes_returned").bool(returned);
    let Some(rt) = &m.runtime else {
        j.key("loaded").str("builtin");
        return;
    };
    j.key("loaded").str("runtime");
    j.key("object").str(&rt.object);
    j.key("load_ns").u64(rt.load_ns);
    j.key("relocs_applied").u64(rt.relocs as u64);
    j.key("got_entries").u64(rt.got_entries as u64);
    j.key("placed").begin_object();
    for c in Class::ALL {
        match rt.placed[c] {
            None => j.key(c.name()).null(),
            Some(p) => j
                .key(c.name())
                .begin_object()
                .key("addr")
                .str(&format!("{:#x}", p.addr))
                .key("bytes")
                .u64(p.len)
                .key("taken")
                .u64(p.taken)
                .key("in")
                .str(p.at.name())
                .end_object(),
        };
    }
    j.end_object();
}

impl Loader {
    /// Refreshes the figures that change after boot: W^X, mappings.
    pub(super) fn refresh(&mut self) {
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
            "REPORT {}",
            crate::modules::json_with(&self.mods, t, &|j| self.write_extra(j))
        );
    }

    pub(super) fn write_extra(&self, j: &mut Json) {
        let hex = |v: u64| format!("{v:#x}");
        j.key("pools").begin_object();
        for c in Class::ALL {
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
            j.key(c.name()).begin_object();
            j.key("size").u64(f.size);
            j.key("used").u64(f.used);
            j.key("free").u64(f.free);
            j.key("largest_free").u64(p.largest_free());
            j.key("fresh_pages")
                .u64(self.placer.fresh.iter().filter(|x| x.class == c).count() as u64);
            if c == Class::Data {
                match arena {
                    Some((s, e, used, free)) => j
                        .key("heap_tail")
                        .begin_object()
                        .key("range")
                        .begin_array()
                        .str(&hex(s))
                        .str(&hex(e))
                        .end_array()
                        .key("used")
                        .u64(used as u64)
                        .key("free")
                        .u64(free as u64)
                        .end_object(),
                    None => j.key("heap_tail").null(),
                };
            }
            let (k4, m2) = mappings(&self.mapped[c], &self.placer.fresh, c);
            j.key("mappings")
                .begin_object()
                .key("4k")
                .u64(k4 as u64)
                .key("2m")
                .u64(m2 as u64)
                .end_object();
            j.end_object();
        }
        j.end_object();
        j.key("fresh_pages").begin_array();
        for f in &self.placer.fresh {
            j.begin_object()
                .key("class")
                .str(f.class.name())
                .key("addr")
                .str(&hex(f.va))
                .key("phys")
                .str(&hex(f.phys))
                .key("size")
                .u64(f.len)
                .key("flags")
                .str(&format!("{:?}", place::class_flags(f.class)))
                .end_object();
        }
        j.end_array();
        let runtime = |pred: &dyn Fn(&Module) -> bool| {
            self.mods
                .iter()
                .filter(|m| m.runtime.is_some() && pred(m))
                .count() as u64
        };
        j.key("runtime")
            .begin_object()
            .key("loaded")
            .u64(runtime(&|m| m.kept))
            .key("expunged")
            .u64(runtime(&|m| m.expunged.is_some()))
            .key("unloaded")
            .u64(self.mods.iter().filter(|m| m.unloaded.is_some()).count() as u64)
            .key("refused")
            .u64(self.refusals.len() as u64)
            .key("irq_handlers")
            .u64(crate::kapi::registered_irqs() as u64)
            .end_object();
        j.key("refusals").begin_array();
        for r in &self.refusals {
            j.begin_object()
                .key("object")
                .str(&r.object)
                .key("kind")
                .str(r.kind)
                .key("error")
                .str(&r.error)
                .end_object();
        }
        j.end_array();
    }
}
