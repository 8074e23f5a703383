//! Builds the module table bytes from the plan with [`modtable::table::build`],
//! followed by the modules' export list ([`modtable::exports`]).

use crate::plan::Plan;
use crate::symbols::{Export, Resolved};
use modtable::PerClass;
use modtable::table::{self, Header, ModuleEntry, RelocGroups};
use std::collections::HashMap;

/// The parts of a module's table entry that the plan does not carry.
#[derive(Clone, Debug, Default)]
pub struct TableModule {
    /// Dependencies (slot indices, all smaller than the module's).
    pub deps: Vec<u16>,
    /// Fields the kernel redoes, grouped.
    pub relocs: RelocGroups,
}

fn u32s(p: PerClass<u64>) -> PerClass<u32> {
    PerClass(p.0.map(|v| u32::try_from(v).expect("checked: regions are at most 4 GiB")))
}

/// Serialises the table for `plan` (module `i` of the plan gets `extra[i]`).
pub fn build(plan: &Plan, extra: Vec<TableModule>) -> Vec<u8> {
    let header = Header {
        module_count: plan.modules.len() as u32,
        slot_align: plan.slot_align as u32,
        region_base: PerClass(plan.regions.0.map(|r| r.addr)),
        region_size: PerClass(plan.regions.0.map(|r| r.size)),
    };
    let entries: Vec<ModuleEntry> = plan
        .modules
        .iter()
        .zip(extra)
        .map(|(m, x)| ModuleEntry {
            name: m.name.clone(),
            deps: x.deps,
            slot_off: u32s(m.slot_off),
            slot_size: u32s(m.slot_size),
            size: u32s(m.size),
            align: u32s(m.align),
            bss_size: m.bss_size as u32,
            percpu: (m.percpu_off as u32, m.percpu_size as u32),
            probe_off: m.probe_off as u32,
            selftest_off: m.selftest_off.map(|o| o as u32),
            checksum: m.checksum,
            predicted: m.predicted,
            relocs: x.relocs,
        })
        .collect();
    table::build(&header, &entries)
}

/// Appends the export list of `exports` (every module export, by name,
/// with the signature hash its exporter records: `sig_of(name)`) to the
/// table bytes, at the next 8-byte boundary, sorted by name so that the
/// image does not depend on hash order.
pub fn append_exports(
    table: &mut Vec<u8>,
    exports: &HashMap<Vec<u8>, Export>,
    sig_of: &dyn Fn(&str) -> Option<u64>,
) {
    let mut list: Vec<modtable::exports::Export<'_>> = exports
        .iter()
        .filter_map(|(name, e)| match e.target {
            Resolved::In { module, class, off } => {
                let name = std::str::from_utf8(name).ok()?;
                Some(modtable::exports::Export {
                    name,
                    module: module as u16,
                    class,
                    offset: u32::try_from(off).ok()?,
                    sig_hash: sig_of(name).unwrap_or(0),
                })
            }
            Resolved::Abs(_) => None,
        })
        .collect();
    list.sort_unstable_by_key(|e| e.name);
    table.resize(modtable::exports::offset_after(table.len()), 0);
    table.extend_from_slice(&modtable::exports::build(&list));
}
