//! `kapi_mmio_*`: device memory, only inside ranges the module claimed.
//!
//! The 32-bit MMIO hole (physical 3 GiB .. 4 GiB, where QEMU puts PCI BARs,
//! the HPET, the IOMMUs and the local APIC) is mapped once at boot, uncached
//! and never executable, into its own window, with 2 MiB pages whose page
//! tables are allocated then. A claim is therefore bookkeeping only: a probe
//! that maps and unmaps device memory leaves the page allocator exactly as it
//! found it. Modules reach device memory only through these services, which
//! check every access against the caller's claims.

use super::{owner, resources, service};
use crate::modules::guard::{self, Abort};
use alloc::vec::Vec;
use spin::Mutex;

/// First physical address of the MMIO window.
const HOLE_START: u64 = 0xc000_0000;
/// End of the MMIO window.
const HOLE_END: u64 = 0x1_0000_0000;
/// Virtual address of physical `HOLE_START`.
const WINDOW: u64 = 0xffff_c000_0000_0000;

/// Claimed ranges: (phys, len, owner).
static CLAIMS: Mutex<Vec<(u64, u64, usize)>> = Mutex::new(Vec::new());

/// Runs `f` on the claims with interrupts off (module IRQ handlers check
/// them too, on any CPU).
fn claims<R>(f: impl FnOnce(&mut Vec<(u64, u64, usize)>) -> R) -> R {
    crate::arch::without_interrupts(|| f(&mut CLAIMS.lock()))
}

pub(super) fn init() {
    use crate::mm::paging::{Flags, map_range};
    let flags = Flags::RW | Flags::NO_CACHE;
    map_range(WINDOW, HOLE_START, HOLE_END - HOLE_START, flags)
        .expect("cannot map the MMIO window");
    // The local APIC and I/O APIC belong to the kernel.
    claims(|c| {
        c.clear();
        c.push((0xfec0_0000, 0x1000, super::KERNEL));
        c.push((0xfee0_0000, 0x1000, super::KERNEL));
    });
}

fn virt(phys: u64) -> u64 {
    WINDOW + (phys - HOLE_START)
}

/// Claims `[phys, phys + len)` for the running module and returns the
/// virtual address it is reached through, or 0 (outside the MMIO hole,
/// empty, or already claimed).
pub extern "C" fn kapi_mmio_map(phys: u64, len: u64) -> u64 {
    service(|| {
        let Some(end) = phys.checked_add(len) else {
            return 0;
        };
        if len == 0 || phys < HOLE_START || end > HOLE_END {
            return 0;
        }
        let me = owner();
        let taken = claims(|claims| {
            let busy = claims.iter().any(|&(p, l, _)| phys < p + l && p < end);
            if !busy {
                claims.push((phys, len, me));
            }
            busy
        });
        if taken {
            return 0;
        }
        resources::with(me, |r| r.mmio.push((phys, len)));
        virt(phys)
    })
}
crate::export_symbol!(kapi_mmio_map);

pub(super) fn unclaim(phys: u64, len: u64, module: usize) {
    claims(|c| c.retain(|&(p, l, o)| !(p == phys && l == len && o == module)));
}

/// The violation an access would be, or `None` if it is allowed.
fn violation_of(addr: u64, width: u32) -> Option<Abort> {
    if !matches!(width, 1 | 2 | 4 | 8) || !addr.is_multiple_of(width as u64) {
        return Some(Abort::violation(format_args!(
            "MMIO access of width {width} at {addr:#x}"
        )));
    }
    let me = owner();
    let ok = addr >= WINDOW
        && claims(|c| {
            c.iter().any(|&(p, l, o)| {
                let v = virt(p);
                o == me && addr >= v && addr + width as u64 <= v + l
            })
        });
    if ok {
        None
    } else {
        Some(Abort::violation(format_args!(
            "access to unclaimed MMIO address {addr:#x}"
        )))
    }
}

/// Reads device memory the module claimed.
pub extern "C" fn kapi_mmio_read(addr: u64, width: u32) -> u64 {
    service(|| match violation_of(addr, width) {
        // SAFETY: `addr` lies inside a range the running module claimed, in
        // the uncached window mapped at init, and is aligned to `width`.
        None => unsafe {
            match width {
                1 => core::ptr::read_volatile(addr as *const u8) as u64,
                2 => core::ptr::read_volatile(addr as *const u16) as u64,
                4 => core::ptr::read_volatile(addr as *const u32) as u64,
                _ => core::ptr::read_volatile(addr as *const u64),
            }
        },
        Some(a) => guard::violation(a, u64::MAX),
    })
}
crate::export_symbol!(kapi_mmio_read);

/// Writes device memory the module claimed.
pub extern "C" fn kapi_mmio_write(addr: u64, width: u32, value: u64) {
    service(|| match violation_of(addr, width) {
        // SAFETY: as in `kapi_mmio_read`.
        None => unsafe {
            match width {
                1 => core::ptr::write_volatile(addr as *mut u8, value as u8),
                2 => core::ptr::write_volatile(addr as *mut u16, value as u16),
                4 => core::ptr::write_volatile(addr as *mut u32, value as u32),
                _ => core::ptr::write_volatile(addr as *mut u64, value),
            }
        },
        Some(a) => guard::violation(a, ()),
    })
}
crate::export_symbol!(kapi_mmio_write);
