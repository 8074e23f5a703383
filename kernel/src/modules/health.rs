//! Kept modules that went wrong after their probe: a self-test that failed
//! at the final address, or a callback (IRQ handler, console write) that
//! faulted, panicked or broke a service's rules. Either makes the boot
//! "degraded": it completes, the report names the module, and the kernel
//! leaves QEMU with [`crate::exit::degraded`] instead of success.

use super::Module;
use super::guard;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::Class;
use spin::Once;

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
    /// The CPU the callback ran on.
    pub cpu: usize,
}

/// `module+0xoffset` for an address in the live text of a kept module (or
/// of the module being probed).
fn locate(mods: &[Module], addr: u64) -> Option<String> {
    mods.iter().find_map(|m| {
        let start = m.base[Class::Text];
        let end = start + m.placement.size[Class::Text] as u64;
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
                cpu: f.cpu,
            });
        }
    }
    if lost > 0 {
        log::error!("modules: {lost} more callback faults were not recorded");
    }
}

/// Why a kept module makes the boot degraded, if it does.
pub fn problem(m: &Module) -> Option<String> {
    if !m.kept {
        return None;
    }
    let mut why: Vec<String> = Vec::new();
    if let Some(Err(e)) = &m.selftest {
        why.push(format!("selftest failed: {e}"));
    }
    for f in &m.runtime_faults {
        why.push(format!("{}: {}", f.place, f.reason));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

static DEGRADED: Once<Vec<(&'static str, String)>> = Once::new();

/// Remembers which kept modules are in trouble, for [`degraded`].
pub fn record(mods: &[Module]) {
    DEGRADED.call_once(|| {
        mods.iter()
            .filter_map(|m| problem(m).map(|p| (m.name, p)))
            .collect()
    });
}

/// The kept modules that failed their self-test or faulted later, with why
/// (empty if none, or before the module phase ended).
pub fn degraded() -> &'static [(&'static str, String)] {
    DEGRADED.get().map_or(&[], Vec::as_slice)
}

/// Names of [`degraded`] modules.
pub fn degraded_names() -> Vec<&'static str> {
    degraded().iter().map(|(n, _)| *n).collect()
}
