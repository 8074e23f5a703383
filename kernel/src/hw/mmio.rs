//! Device memory: the MMIO window, the claim registry of its ranges, and
//! the access, made only inside a range its caller claimed.
//!
//! The 32-bit MMIO hole (physical 3 GiB .. 4 GiB, where QEMU puts PCI BARs,
//! the HPET, the IOMMUs and the local APIC) is mapped once at boot, uncached
//! and never executable, into its own window, with 2 MiB pages whose page
//! tables are allocated then. A claim is therefore bookkeeping only: a probe
//! that maps and unmaps device memory leaves the page allocator exactly as it
//! found it.

use super::KERNEL;
use crate::arch::locked;
use alloc::vec::Vec;
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

/// Why a claim was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// The range is empty or wraps.
    Invalid,
    /// It is not inside the MMIO hole.
    Outside,
    /// Some of it is claimed already.
    Busy,
}

/// Why an access was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The width is not 1, 2, 4 or 8, or the address not aligned to it.
    Width,
    /// The bytes are not inside a range the owner claimed.
    Unclaimed,
}

/// Maps the window and gives the kernel the local APIC and I/O APIC.
pub fn init() {
    use crate::mm::paging::{Flags, map_range};
    let flags = Flags::RW | Flags::NO_CACHE;
    map_range(WINDOW, HOLE_START, HOLE_END - HOLE_START, flags)
        .expect("cannot map the MMIO window");
    locked(&CLAIMS, |c| {
        c.clear();
        // Room for every module's claims up front, so that a probe's claim
        // never grows the table and shows up in its heap leak figure.
        c.reserve(CLAIMS_CAPACITY);
        c.push((0xfec0_0000, 0x1000, KERNEL));
        c.push((0xfee0_0000, 0x1000, KERNEL));
    });
}

fn virt(phys: u64) -> u64 {
    WINDOW + (phys - HOLE_START)
}

/// Claims `[phys, phys + len)` for `owner`; the virtual address it is
/// reached through.
pub fn claim(phys: u64, len: u64, owner: usize) -> Result<u64, ClaimError> {
    let Some(end) = phys.checked_add(len).filter(|_| len > 0) else {
        return Err(ClaimError::Invalid);
    };
    if phys < HOLE_START || end > HOLE_END {
        return Err(ClaimError::Outside);
    }
    locked(&CLAIMS, |claims| {
        if claims.iter().any(|&(p, l, _)| phys < p + l && p < end) {
            return Err(ClaimError::Busy);
        }
        claims.push((phys, len, owner));
        Ok(virt(phys))
    })
}

/// Gives back the claim `phys`, `len` of `owner`.
pub fn unclaim(phys: u64, len: u64, owner: usize) {
    locked(&CLAIMS, |c| {
        c.retain(|&(p, l, o)| !(p == phys && l == len && o == owner))
    });
}

/// Whether `owner` may access `width` bytes at window address `addr`.
fn check(owner: usize, addr: u64, width: u32) -> Result<(), Refused> {
    if !matches!(width, 1 | 2 | 4 | 8) || !addr.is_multiple_of(width as u64) {
        return Err(Refused::Width);
    }
    let ok = addr >= WINDOW
        && locked(&CLAIMS, |c| {
            c.iter().any(|&(p, l, o)| {
                let v = virt(p);
                o == owner
                    && addr >= v
                    && addr.checked_add(width as u64).is_some_and(|e| e <= v + l)
            })
        });
    if ok { Ok(()) } else { Err(Refused::Unclaimed) }
}

/// An access (`value` `None` reads) of `width` bytes at window address
/// `addr` by `owner`, made only inside a range it claimed.
#[allow(unsafe_code)]
pub fn access(owner: usize, addr: u64, width: u32, value: Option<u64>) -> Result<u64, Refused> {
    check(owner, addr, width)?;
    // SAFETY: `check` found `addr..addr + width` inside a range `owner`
    // claimed, in the uncached window mapped at init, and `addr` aligned to
    // `width` (1, 2, 4, 8).
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
