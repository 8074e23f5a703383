//! Modules whose callbacks (IRQ handlers, console writes) faulted, panicked
//! or broke a service's rules after their probe: the guard records each
//! such fault as it happens, the loader moves them into the modules'
//! records, and the report shows them.

use super::Module;
use super::guard;
use alloc::format;
use alloc::string::{String, ToString};
use modtable::Class;

/// A callback of a module that ended early, as the report shows it.
#[derive(Clone, Debug)]
pub struct RuntimeFault {
    /// Which callback: `IRQ 6 handler`, `console write`.
    pub place: String,
    /// Kind (`fault`, `panic`, `hung`, `violation`).
    pub kind: &'static str,
    /// What happened.
    pub reason: String,
    /// Where a CPU fault happened, as `module+offset` in live module text.
    pub at: Option<String>,
    /// The probe or self-test that was running (`probe of NAME`), if any.
    pub during: Option<String>,
}

/// `module+0xoffset` for an address in the live text of a kept module (or
/// of the module being probed).
fn locate(mods: &[Module], addr: u64) -> Option<String> {
    mods.iter().find_map(|m| {
        let start = m.base[Class::Text];
        let end = start + m.rec.size[Class::Text] as u64;
        (m.expunged.is_none() && addr >= start && addr < end)
            .then(|| format!("{}+{:#x}", m.name, addr - start))
    })
}

/// Moves the callback faults the guard recorded into the modules' records;
/// `phase` names what the loader was running (`probe`, `self-test`).
pub fn collect(mods: &mut [Module], phase: &str) {
    let (faults, lost) = guard::take_runtime_faults();
    for f in faults.iter().flatten() {
        let at = f.abort.rip().and_then(|rip| locate(mods, rip));
        let during = f
            .during
            .and_then(|d| mods.get(d))
            .map(|d| format!("{phase} of {}", d.name));
        let reason = f.abort.to_string();
        if let Some(m) = mods.get_mut(f.module) {
            m.runtime_faults.push(RuntimeFault {
                place: f.place.to_string(),
                kind: f.abort.kind(),
                reason,
                at,
                during,
            });
        }
    }
    if lost > 0 {
        log::error!("modules: {lost} more callback faults were not recorded");
    }
}
