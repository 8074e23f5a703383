//! `kapi_mmio_*`: device memory, only inside ranges the module claimed.
//!
//! The 32-bit MMIO hole (physical 3 GiB .. 4 GiB, where QEMU puts PCI BARs,
//! the HPET, the IOMMUs and the local APIC) is mapped once at boot, uncached
//! and never executable, into its own window, with 2 MiB pages whose page
//! tables are allocated then. A claim is therefore bookkeeping only: a probe
//! that maps and unmaps device memory leaves the page allocator exactly as it
//! found it. Modules reach device memory only through these services, which
//! check every access against the caller's claims.

use super::{buffer, locked, owner, resources, service};
use crate::modules::guard::Abort;
use alloc::vec::Vec;
use modabi::Status;
use spin::Mutex;

/// First physical address of the MMIO window.
const HOLE_START: u64 = 0xc000_0000;
/// End of the MMIO window.
const HOLE_END: u64 = 0x1_0000_0000;
/// Virtual address of physical `HOLE_START`.
const WINDOW: u64 = 0xffff_c000_0000_0000;

/// Claims the table has room for without growing.
const CLAIMS_CAPACITY: usize = 64;

/// Claimed ranges: (phys, len, owner).
static CLAIMS: Mutex<Vec<(u64, u64, usize)>> = Mutex::new(Vec::new());

pub(super) fn init() {
    use crate::mm::paging::{Flags, map_range};
    let flags = Flags::RW | Flags::NO_CACHE;
    map_range(WINDOW, HOLE_START, HOLE_END - HOLE_START, flags)
        .expect("cannot map the MMIO window");
    // The local APIC and I/O APIC belong to the kernel.
    locked(&CLAIMS, |c| {
        c.clear();
        // Room for every module's claims up front, so that a probe's claim
        // never grows the table and shows up in its heap leak figure.
        c.reserve(CLAIMS_CAPACITY);
        c.push((0xfec0_0000, 0x1000, super::KERNEL));
        c.push((0xfee0_0000, 0x1000, super::KERNEL));
    });
}

fn virt(phys: u64) -> u64 {
    WINDOW + (phys - HOLE_START)
}

/// Claims `[phys, phys + len)` for the running module and writes the
/// virtual address it is reached through to `virt_out`: `Invalid` for an
/// empty or wrapping range, `NotFound` outside the MMIO hole, `Busy` if
/// any of it is claimed already.
pub extern "C" fn kapi_mmio_map(phys: u64, len: u64, virt_out: *mut u64) -> i32 {
    service("kapi_mmio_map", || {
        let Some(end) = phys.checked_add(len).filter(|_| len > 0) else {
            return Ok(Status::Invalid as i32);
        };
        if phys < HOLE_START || end > HOLE_END {
            return Ok(Status::NotFound as i32);
        }
        let me = owner();
        let claimed = locked(&CLAIMS, |claims| {
            if claims.iter().any(|&(p, l, _)| phys < p + l && p < end) {
                return false;
            }
            claims.push((phys, len, me));
            true
        });
        if !claimed {
            return Ok(Status::Busy as i32);
        }
        resources::with(me, |r| r.mmio.push((phys, len)));
        buffer::write(
            "kapi_mmio_map",
            virt_out.cast(),
            &virt(phys).to_ne_bytes(),
            8,
        )?;
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_mmio_map);

pub(super) fn unclaim(phys: u64, len: u64, module: usize) {
    locked(&CLAIMS, |c| {
        c.retain(|&(p, l, o)| !(p == phys && l == len && o == module))
    });
}

/// Checks that the running module may access `width` bytes at `addr`.
fn check(addr: u64, width: u32) -> Result<(), Abort> {
    if !matches!(width, 1 | 2 | 4 | 8) || !addr.is_multiple_of(width as u64) {
        return Err(Abort::violation(format_args!(
            "MMIO access of width {width} at {addr:#x}"
        )));
    }
    let me = owner();
    let ok = addr >= WINDOW
        && locked(&CLAIMS, |c| {
            c.iter().any(|&(p, l, o)| {
                let v = virt(p);
                o == me && addr >= v && addr.checked_add(width as u64).is_some_and(|e| e <= v + l)
            })
        });
    if ok {
        Ok(())
    } else {
        Err(Abort::violation(format_args!(
            "access to unclaimed MMIO address {addr:#x}"
        )))
    }
}

/// The access itself (`value` `None` reads), after [`check`].
#[allow(unsafe_code)]
fn access(addr: u64, width: u32, value: Option<u64>) -> Result<u64, Abort> {
    check(addr, width)?;
    // SAFETY: `addr` lies inside a range the running module claimed, in the
    // uncached window mapped at init, and is aligned to `width` (1, 2, 4, 8).
    let v = unsafe {
        match (width, value) {
            (1, None) => core::ptr::read_volatile(addr as *const u8) as u64,
            (2, None) => core::ptr::read_volatile(addr as *const u16) as u64,
            (4, None) => core::ptr::read_volatile(addr as *const u32) as u64,
            (_, None) => core::ptr::read_volatile(addr as *const u64),
            (1, Some(v)) => {
                core::ptr::write_volatile(addr as *mut u8, v as u8);
                0
            }
            (2, Some(v)) => {
                core::ptr::write_volatile(addr as *mut u16, v as u16);
                0
            }
            (4, Some(v)) => {
                core::ptr::write_volatile(addr as *mut u32, v as u32);
                0
            }
            (_, Some(v)) => {
                core::ptr::write_volatile(addr as *mut u64, v);
                0
            }
        }
    };
    Ok(v)
}

/// Reads device memory the module claimed.
pub extern "C" fn kapi_mmio_read(addr: u64, width: u32) -> u64 {
    service("kapi_mmio_read", || access(addr, width, None))
}
crate::export_symbol!(kapi_mmio_read);

/// Writes device memory the module claimed.
pub extern "C" fn kapi_mmio_write(addr: u64, width: u32, value: u64) {
    service("kapi_mmio_write", || {
        access(addr, width, Some(value)).map(|_| ())
    })
}
crate::export_symbol!(kapi_mmio_write);
