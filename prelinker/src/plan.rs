//! The layout plan: per module and class the slot address, slot size, used
//! bytes, alignment and padding; relocation counts; totals; and what a
//! page-aligned (Linux-module style) layout would take. `link --plan-json`
//! writes it, `inspect` rebuilds the same numbers from an image's table.
//! The link also records where each section of a module object lies inside
//! its class (`sections`), which a debugger needs to load the object's
//! symbols at the module's final class addresses; the table does not keep
//! that, so an inspected plan has none.

use crate::kernel::{Area, HUGE_PAGE};
use crate::layout::{align_up, page_aligned};
use modtable::table::{Placement, Prediction, Table};
use modtable::{Class, PerClass};
use serde_json::{Map, Value, json};

/// Where one placed section of a module object lies inside its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionPlan {
    /// Section name, as in the object.
    pub name: String,
    /// The class it is placed in.
    pub class: Class,
    /// Offset from the start of the module's class.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// One module in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulePlan {
    /// Module name.
    pub name: String,
    /// Input file, when known (not recorded in the image).
    pub file: Option<String>,
    /// Names of its direct dependencies.
    pub deps: Vec<String>,
    /// Slot address per class.
    pub addr: PerClass<u64>,
    /// Slots, used bytes, alignment, entry points, checksum and
    /// prediction, as the table records them.
    pub placement: Placement,
    /// Relocations applied by the prelinker (including GOT entries), when known.
    pub relocs_applied: Option<u64>,
    /// Relocations recorded for the kernel.
    pub relocs_recorded: u64,
    /// GOT entries, when known.
    pub got_entries: Option<u64>,
    /// Placed sections in section-index order (empty when not known: the
    /// table does not record them).
    pub sections: Vec<SectionPlan>,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Slot alignment.
    pub slot_align: u64,
    /// Region base and size per class (`file_off` is 0 when unknown).
    pub regions: PerClass<Area>,
    /// End of the kernel's own bytes in each class range, when known (the
    /// link knows it from the kernel ELF; an image's table does not say).
    pub kernel_end: Option<PerClass<u64>>,
    /// Modules in slot order.
    pub modules: Vec<ModulePlan>,
}

/// Totals over all modules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of slot sizes per class.
    pub slots: PerClass<u64>,
    /// Sum of used bytes per class.
    pub used: PerClass<u64>,
    /// Sum of slot padding per class.
    pub padding: PerClass<u64>,
    /// End of the last slot per class (region bytes taken).
    pub region_used: PerClass<u64>,
    /// A page-aligned layout of the same modules, per class.
    pub page_aligned: PerClass<u64>,
    /// Relocations recorded.
    pub relocs_recorded: u64,
    /// Relocations applied, when known.
    pub relocs_applied: Option<u64>,
}

impl Plan {
    /// Rebuilds the plan from a parsed module table.
    pub fn from_table(t: &Table<'_>) -> Plan {
        let h = t.header();
        let regions = PerClass([0, 1, 2].map(|i| Area {
            addr: h.region_base.0[i],
            size: h.region_size.0[i],
            file_off: 0,
        }));
        let names: Vec<String> = (0..t.len())
            .map(|i| t.name(&t.module(i)).to_string())
            .collect();
        let modules = (0..t.len())
            .map(|i| {
                let m = t.module(i);
                let l = m.placement;
                ModulePlan {
                    name: names[i].clone(),
                    file: None,
                    deps: t.deps(&m).map(|d| names[d as usize].clone()).collect(),
                    addr: PerClass(
                        [0, 1, 2].map(|c| h.region_base.0[c] + u64::from(l.slot_off.0[c])),
                    ),
                    placement: l,
                    relocs_applied: None,
                    relocs_recorded: t.field_count(&m) as u64,
                    got_entries: None,
                    sections: Vec::new(),
                }
            })
            .collect();
        Plan {
            slot_align: h.slot_align.into(),
            regions,
            kernel_end: None,
            modules,
        }
    }

    /// Totals over all modules.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            relocs_applied: Some(0),
            ..Default::default()
        };
        for m in &self.modules {
            for c in Class::ALL {
                t.slots[c] += u64::from(m.placement.slot_size[c]);
                t.used[c] += u64::from(m.placement.size[c]);
                t.padding[c] +=
                    u64::from(m.placement.slot_size[c]) - u64::from(m.placement.size[c]);
                if u64::from(m.placement.slot_size[c]) > 0 {
                    t.region_used[c] = t.region_used[c].max(
                        u64::from(m.placement.slot_off[c]) + u64::from(m.placement.slot_size[c]),
                    );
                }
            }
            t.relocs_recorded += m.relocs_recorded;
            t.relocs_applied = t.relocs_applied.zip(m.relocs_applied).map(|(a, b)| a + b);
        }
        t.page_aligned = page_aligned(self.modules.iter().map(|m| m.placement.size.map(u64::from)));
        t
    }

    /// The plan as one JSON object.
    pub fn to_json(&self) -> Value {
        let modules: Vec<Value> = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut classes = Map::new();
                for c in Class::ALL {
                    classes.insert(
                        c.name().into(),
                        json!({
                            "addr": m.addr[c],
                            "slot_off": u64::from(m.placement.slot_off[c]),
                            "slot_size": u64::from(m.placement.slot_size[c]),
                            "size": u64::from(m.placement.size[c]),
                            "align": u64::from(m.placement.align[c]),
                            "padding": u64::from(m.placement.slot_size[c]) - u64::from(m.placement.size[c]),
                            "page_aligned": align_up(u64::from(m.placement.size[c]), 4096),
                        }),
                    );
                }
                let mut o = json!({
                    "index": i,
                    "name": m.name,
                    "deps": m.deps,
                    "classes": classes,
                    "bss_size": m.placement.bss_size,
                    "percpu": m.placement.percpu_size,
                    "percpu_off": m.placement.percpu_off,
                    "probe_off": m.placement.probe_off,
                    "selftest_off": m.placement.selftest_off,
                    "relocs_recorded": m.relocs_recorded,
                    "checksum": format!("{:#018x}", m.placement.checksum),
                    "predicted": m.placement.predicted.map(Prediction::name),
                });
                if let Some(f) = &m.file {
                    o["file"] = json!(f);
                }
                if let Some(a) = m.relocs_applied {
                    o["relocs_applied"] = json!(a);
                    o["relocs_skipped"] = json!(a - m.relocs_recorded);
                }
                if let Some(g) = m.got_entries {
                    o["got_entries"] = json!(g);
                }
                if !m.sections.is_empty() {
                    let secs: Vec<Value> = m
                        .sections
                        .iter()
                        .map(|s| {
                            json!({
                                "name": s.name,
                                "class": s.class.name(),
                                "offset": s.offset,
                                "size": s.size,
                            })
                        })
                        .collect();
                    o["sections"] = Value::Array(secs);
                }
                o
            })
            .collect();
        let t = self.totals();
        let mut per_class = Map::new();
        let mut regions = Map::new();
        for c in Class::ALL {
            per_class.insert(
                c.name().into(),
                json!({
                    "slots": t.slots[c],
                    "used": t.used[c],
                    "padding": t.padding[c],
                    "page_aligned": t.page_aligned[c],
                }),
            );
            let r = self.regions[c];
            let mut region = json!({
                "base": r.addr,
                "size": r.size,
                "used": t.region_used[c],
                "free": r.size.saturating_sub(t.region_used[c]),
            });
            if let Some(k) = &self.kernel_end {
                // The class range: 2 MiB-aligned start, the kernel's own
                // bytes up to `kernel_end`, then the region to its end.
                region["range"] = json!([r.addr & !(HUGE_PAGE - 1), r.addr + r.size]);
                region["kernel_end"] = json!(k[c]);
            }
            regions.insert(c.name().into(), region);
        }
        let mut totals = json!({
            "modules": self.modules.len(),
            "classes": per_class,
            "slots": t.slots.total(),
            "used": t.used.total(),
            "padding": t.padding.total(),
            "page_aligned": t.page_aligned.total(),
            "page_aligned_extra": t.page_aligned.total().saturating_sub(t.used.total()),
            "relocs_recorded": t.relocs_recorded,
            "percpu": self.modules.iter().map(|m| u64::from(m.placement.percpu_size)).sum::<u64>(),
            "percpu_packed": self.modules.iter().map(|m| align_up(m.placement.percpu_size.into(), 64)).sum::<u64>(),
        });
        if let Some(a) = t.relocs_applied {
            totals["relocs_applied"] = json!(a);
        }
        json!({
            "slot_align": self.slot_align,
            "regions": regions,
            "modules": modules,
            "totals": totals,
        })
    }

    /// A human-readable report of the plan.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let t = self.totals();
        let _ = writeln!(
            s,
            "slot alignment {} bytes, {} modules",
            self.slot_align,
            self.modules.len()
        );
        for c in Class::ALL {
            let r = self.regions[c];
            let _ = writeln!(
                s,
                "region {:<6} base {:#x} size {:>9} used {:>9} free {:>9}",
                c.name(),
                r.addr,
                r.size,
                t.region_used[c],
                r.size.saturating_sub(t.region_used[c])
            );
        }
        let _ = writeln!(
            s,
            "{:>4} {:<20} {:<6} {:>18} {:>8} {:>8} {:>7} {:>5}",
            "#", "module", "class", "slot address", "slot", "used", "padding", "align"
        );
        for (i, m) in self.modules.iter().enumerate() {
            for c in Class::ALL {
                let _ = writeln!(
                    s,
                    "{:>4} {:<20} {:<6} {:#018x} {:>8} {:>8} {:>7} {:>5}",
                    if c == Class::Text {
                        i.to_string()
                    } else {
                        String::new()
                    },
                    if c == Class::Text {
                        m.name.as_str()
                    } else {
                        ""
                    },
                    c.name(),
                    m.addr[c],
                    u64::from(m.placement.slot_size[c]),
                    u64::from(m.placement.size[c]),
                    u64::from(m.placement.slot_size[c]) - u64::from(m.placement.size[c]),
                    u64::from(m.placement.align[c])
                );
            }
            let _ = writeln!(
                s,
                "     deps [{}] relocs recorded {} bss {} percpu {} probe +{:#x}{}",
                m.deps.join(", "),
                m.relocs_recorded,
                m.placement.bss_size,
                m.placement.percpu_size,
                m.placement.probe_off,
                m.placement
                    .selftest_off
                    .map(|o| format!(" selftest +{o:#x}"))
                    .unwrap_or_default()
            );
        }
        for c in Class::ALL {
            let _ = writeln!(
                s,
                "total  {:<6} slots {:>9} used {:>9} padding {:>8} page-aligned {:>9}",
                c.name(),
                t.slots[c],
                t.used[c],
                t.padding[c],
                t.page_aligned[c]
            );
        }
        let _ = writeln!(
            s,
            "total         slots {:>9} used {:>9} padding {:>8} page-aligned {:>9} (page alignment would add {} bytes over used)",
            t.slots.total(),
            t.used.total(),
            t.padding.total(),
            t.page_aligned.total(),
            t.page_aligned.total().saturating_sub(t.used.total())
        );
        let _ = writeln!(
            s,
            "relocations recorded for the kernel: {}",
            t.relocs_recorded
        );
        s
    }
}
