//! Builds the module table bytes from the plan with [`modtable::table::build`],
//! followed by the modules' export list ([`modtable::exports`]).

use crate::Map;
use crate::plan::Plan;
use crate::symbols::{Export, Resolved};
use modtable::table::{self, Header, ModuleEntry, RelocGroups};

/// The parts of a module's table entry that the plan does not carry.
#[derive(Clone, Debug, Default)]
pub struct TableModule {
    /// Dependencies (slot indices, all smaller than the module's).
    pub deps: Vec<u16>,
    /// Fields the kernel redoes, grouped.
    pub relocs: RelocGroups,
}

/// Serialises the table for `plan` (module `i` of the plan gets `extra[i]`).
pub fn build(plan: &Plan, extra: Vec<TableModule>) -> Vec<u8> {
    let header = Header {
        module_count: plan.modules.len() as u32,
        slot_align: plan.slot_align as u32,
        region_base: plan.regions.map(|r| r.addr),
        region_size: plan.regions.map(|r| r.size),
    };
    let entries: Vec<ModuleEntry> = plan
        .modules
        .iter()
        .zip(extra)
        .map(|(m, x)| ModuleEntry {
            name: m.name.clone(),
            deps: x.deps,
            placement: m.placement,
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
    exports: &Map<Vec<u8>, Export>,
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
