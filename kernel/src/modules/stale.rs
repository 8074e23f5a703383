//! Stale references into expunged modules: the fault report names the
//! module an address belonged to, and `stale_call=NAME` on the command line
//! calls an expunged module's old probe address after boot, to show it.

use super::{Module, image};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use modtable::Class;
use spin::Once;

/// An expunged module's former address ranges, `(start, end, class)`.
struct Former {
    name: &'static str,
    ranges: Vec<(u64, u64, Class)>,
}

static FORMER: Once<Vec<Former>> = Once::new();
/// Bytes of kept modules, where they live after boot.
static LIVE: Once<Vec<(u64, u64)>> = Once::new();

/// Remembers where expunged modules were (their slots and the addresses
/// they were probed at), and where kept modules live.
pub fn record(mods: &[Module]) {
    FORMER.call_once(|| {
        mods.iter()
            .filter(|m| m.expunged.is_some())
            .map(|m| Former {
                name: m.name,
                ranges: Class::ALL
                    .iter()
                    .filter(|&&c| m.placement.size[c] > 0)
                    .flat_map(|&c| {
                        let len = m.placement.size[c] as u64;
                        [
                            (m.slot[c], m.slot[c] + len, c),
                            (m.base[c], m.base[c] + len, c),
                        ]
                    })
                    .collect(),
            })
            .collect()
    });
    KEPT_TEXT.call_once(|| {
        mods.iter()
            .find(|m| m.kept && m.placement.size[Class::Text] > 0)
            .map(|m| (m.name, m.base[Class::Text]))
    });
    LIVE.call_once(|| {
        mods.iter()
            .filter(|m| m.kept)
            .flat_map(|m| {
                Class::ALL
                    .iter()
                    .map(move |&c| (m.base[c], m.base[c] + m.placement.size[c] as u64))
            })
            .filter(|&(s, e)| e > s)
            .collect()
    });
}

/// Name and text address of the first kept module with text, after boot.
pub fn first_kept_text() -> Option<(&'static str, u64)> {
    KEPT_TEXT.get().copied().flatten()
}

static KEPT_TEXT: Once<Option<(&'static str, u64)>> = Once::new();

fn owner_of(addr: u64) -> Option<(&'static str, Class)> {
    FORMER.get()?.iter().find_map(|f| {
        f.ranges
            .iter()
            .find(|&&(s, e, _)| addr >= s && addr < e)
            .map(|&(_, _, c)| (f.name, c))
    })
}

fn is_live(addr: u64) -> bool {
    LIVE.get()
        .is_some_and(|l| l.iter().any(|&(s, e)| addr >= s && addr < e))
        || crate::loader::is_live(addr)
}

/// Called first by the exception hook: if the faulting instruction or
/// address is in a module region but not live, print which expunged module
/// it belonged to.
pub fn explain(frame: &crate::arch::idt::TrapFrame) {
    let cr2 = if frame.vector == 14 {
        x86_64::registers::control::Cr2::read_raw()
    } else {
        0
    };
    // #BP leaves rip after the int3 byte.
    let rip = if frame.vector == 3 {
        frame.rip - 1
    } else {
        frame.rip
    };
    // Modules loaded after boot and since unloaded or failed.
    if crate::loader::explain_stale(frame.vector, [rip, cr2]) {
        return;
    }
    for addr in [rip, cr2] {
        if image::region_of(addr).is_none() || is_live(addr) {
            continue;
        }
        if let Some((name, class)) = owner_of(addr) {
            // No allocation here: this runs for every exception, including
            // one raised inside the allocator with its lock held.
            let _ = writeln!(
                crate::console::EmergencyWriter,
                "STALE: {} at {addr:#x}: address in the {} of expunged module {name}",
                super::guard::exception_name(frame.vector),
                class.name()
            );
            return;
        }
    }
}

/// With `stale_call=NAME`, calls the old probe address of expunged module
/// NAME; the resulting trap ends the boot with a report naming it. With
/// `stale_call=pool`, calls the last cache line of the text pool (`pool`,
/// bytes no module ever held), which must hold trap bytes.
pub fn maybe_call(mods: &[Module], pool: Option<(u64, u64)>) -> Result<(), String> {
    let Some(name) = crate::cmdline::get("stale_call") else {
        return Ok(());
    };
    if name == "pool" {
        let (_, end) = pool.ok_or("stale_call=pool: this policy leaves no text pool")?;
        let addr = end - 64;
        crate::kprintln!("stale_call: calling {addr:#x} in the text pool");
        let r = call_expecting_a_trap(addr);
        return Err(format!(
            "stale_call=pool: call returned {r} instead of trapping"
        ));
    }
    let m = mods
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| format!("stale_call={name}: no such module"))?;
    if m.expunged.is_none() {
        return Err(format!("stale_call={name}: module is kept, not expunged"));
    }
    let addr = m.slot[Class::Text] + m.placement.probe_off as u64;
    if is_live(addr) {
        return Err(format!(
            "stale_call={name}: old probe address {addr:#x} now holds live code of a kept module; not calling it"
        ));
    }
    crate::kprintln!("stale_call: calling old probe address {addr:#x} of expunged module {name}");
    let r = call_expecting_a_trap(addr);
    Err(format!(
        "stale_call={name}: call returned {r} instead of trapping"
    ))
}

/// Calls `addr`, which holds no live code: freed module bytes (`int3`
/// poison or unmapped) or the trap-filled text pool. The call must trap,
/// and the exception handler reports it; the value is what a call that did
/// not trap returned. The one call of the stale-call test aids (`stale_call=`
/// at boot, the shell's `stale`); their callers check that `addr` is not
/// live code of a kept module. (An unsafe seam by purpose: the call into
/// freed code is the demonstration.)
#[allow(unsafe_code)]
pub fn call_expecting_a_trap(addr: u64) -> i32 {
    // SAFETY: deliberately unsafe by design of these test aids: the address
    // is not live code (the callers checked that no kept module's text is
    // there), so the call traps on `int3` or an unmapped page, and the
    // exception handler reports it.
    let f = unsafe { core::mem::transmute::<u64, extern "C" fn() -> i32>(addr) };
    f()
}
