//! Memory a module passes to a service (a log line, a name, a buffer to
//! fill): where it may be, and the copies to and from it.
//!
//! Module memory is its own sections (in the kernel image), heap blocks (in
//! the direct map) and the kernel stack it runs on; a buffer anywhere else
//! (the MMIO window, a scratch or user-half address) is refused unread.
//! The copies are [`crate::arch::checked_copy`]'s, so a bad pointer inside
//! those ranges becomes an error, not a kernel fault.

use crate::arch::checked_copy::{self, Fault};

/// Why a copy was not made, or not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The buffer wraps around the address space.
    Wraps,
    /// It is not where a module's memory can be.
    NotModuleMemory,
    /// An access faulted (part of the destination may be written).
    Fault(Fault),
}

/// Ranges a module's memory can lie in: the direct map (heap blocks), the
/// kernel stacks, the kernel image (module sections).
fn reachable(addr: u64, len: usize) -> bool {
    let direct = (
        super::paging::DIRECT_MAP_BASE,
        super::paging::DIRECT_MAP_BASE + (1 << 46),
    );
    let stacks = (
        super::stack::STACKS_BASE,
        super::stack::STACKS_BASE + super::stack::MAX_STACKS * super::stack::STACK_SLOT_SIZE,
    );
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    let image_start = crate::layout::KERNEL_VMA;
    [direct, stacks].iter().any(|&(s, e)| addr >= s && end <= e) || addr >= image_start
}

/// Checks that `len` bytes at `addr` are where module memory can be (an
/// empty buffer always is).
pub fn check(addr: u64, len: usize) -> Result<(), Refused> {
    if len == 0 {
        return Ok(());
    }
    if addr.checked_add(len as u64).is_none() {
        return Err(Refused::Wraps);
    }
    if !reachable(addr, len) {
        return Err(Refused::NotModuleMemory);
    }
    Ok(())
}

/// Copies `out.len()` bytes of module memory at `addr` into `out`.
pub fn read(addr: u64, out: &mut [u8]) -> Result<(), Refused> {
    check(addr, out.len())?;
    copy(out.as_mut_ptr(), addr as *const u8, out.len())
}

/// Copies `bytes` into module memory at `addr`.
pub fn write(addr: u64, bytes: &[u8]) -> Result<(), Refused> {
    check(addr, bytes.len())?;
    copy(addr as *mut u8, bytes.as_ptr(), bytes.len())
}

/// The one copy between kernel and module memory, after [`check`].
#[allow(unsafe_code)]
fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Refused> {
    // SAFETY: one side is a kernel slice of `len` bytes borrowed by the
    // caller (`read`'s `out`, `write`'s `bytes`), the other a module buffer
    // that `check` placed in memory modules can own (RAM, never device
    // memory). The module's contract (module-api passes only its own
    // slices) makes it the module's; a wrong pointer either faults, which
    // the checked copy reports, or touches memory the module could have
    // touched itself.
    unsafe { checked_copy::copy(dst, src, len) }.map_err(Refused::Fault)
}
