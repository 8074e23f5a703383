//! Memory a module passes to a service (a log line, a name, a buffer to
//! fill): checked against a length limit and against where module memory
//! can be, then copied with [`crate::arch::checked_copy`], so that a bad
//! pointer becomes an error of the service, not a kernel fault.
//!
//! Module memory is its own sections (in the kernel image), heap blocks (in
//! the direct map) and the kernel stack it runs on; a buffer anywhere else
//! (the MMIO window, a scratch or user-half address) is refused unread.

use crate::modules::guard::Abort;
use alloc::vec::Vec;

/// Ranges a module's memory can lie in: the direct map (heap blocks), the
/// kernel stacks, the kernel image (module sections).
fn reachable(addr: u64, len: usize) -> bool {
    let direct = (
        crate::mm::paging::DIRECT_MAP_BASE,
        crate::mm::paging::DIRECT_MAP_BASE + (1 << 46),
    );
    let stacks = (
        crate::mm::stack::STACKS_BASE,
        crate::mm::stack::STACKS_BASE
            + crate::mm::stack::MAX_STACKS * crate::mm::stack::STACK_SLOT_SIZE,
    );
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    let image_start = crate::layout::KERNEL_VMA;
    [direct, stacks].iter().any(|&(s, e)| addr >= s && end <= e) || addr >= image_start
}

/// Checks a module buffer `addr`+`len` (at most `limit` bytes).
fn check(service: &'static str, addr: u64, len: usize, limit: usize) -> Result<(), Abort> {
    if len > limit {
        return Err(Abort::violation(format_args!(
            "{service}: buffer of {len} bytes exceeds the {limit}-byte limit"
        )));
    }
    if len == 0 {
        return Ok(());
    }
    if addr.checked_add(len as u64).is_none() {
        return Err(Abort::violation(format_args!(
            "{service}: buffer {addr:#x}+{len} wraps around the address space"
        )));
    }
    if !reachable(addr, len) {
        return Err(Abort::violation(format_args!(
            "{service}: buffer {addr:#x}+{len} is not memory a module can own"
        )));
    }
    Ok(())
}

fn fault(
    service: &'static str,
    addr: u64,
    len: usize,
    f: crate::arch::checked_copy::Fault,
) -> Abort {
    Abort::ServiceFault {
        service,
        vector: f.vector,
        addr: f.addr,
        buf: addr,
        len,
    }
}

/// Copies the module's `len` bytes at `ptr` (at most `limit`).
pub(super) fn read_vec(
    service: &'static str,
    ptr: *const u8,
    len: usize,
    limit: usize,
) -> Result<Vec<u8>, Abort> {
    check(service, ptr as u64, len, limit)?;
    let mut v = alloc::vec![0u8; len];
    read_into(service, ptr, len, limit, &mut v)?;
    Ok(v)
}

/// Checks the module's `len` bytes at `ptr` (at most `limit`) and copies
/// the first `out.len()` of them (or all, if fewer) into `out`; returns the
/// copied prefix.
pub(super) fn read_into<'o>(
    service: &'static str,
    ptr: *const u8,
    len: usize,
    limit: usize,
    out: &'o mut [u8],
) -> Result<&'o [u8], Abort> {
    let addr = ptr as u64;
    check(service, addr, len, limit)?;
    let n = len.min(out.len());
    copy(out.as_mut_ptr(), ptr, n).map_err(|f| fault(service, addr, len, f))?;
    Ok(&out[..n])
}

/// Writes `bytes` to the module's buffer at `ptr` (at most `limit` bytes).
pub(super) fn write(
    service: &'static str,
    ptr: *mut u8,
    bytes: &[u8],
    limit: usize,
) -> Result<(), Abort> {
    let addr = ptr as u64;
    check(service, addr, bytes.len(), limit)?;
    copy(ptr, bytes.as_ptr(), bytes.len()).map_err(|f| fault(service, addr, bytes.len(), f))
}

/// The one copy between kernel and module memory.
#[allow(unsafe_code)]
fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), crate::arch::checked_copy::Fault> {
    // SAFETY: one side is a kernel buffer of at least `len` bytes owned by
    // the caller, the other a module buffer that `check` placed in memory
    // modules can own (RAM, never device memory). The module's contract
    // (module-api passes only its own slices) makes it the module's; a
    // wrong pointer either faults, which the checked copy reports, or
    // touches memory the module could have touched itself.
    unsafe { crate::arch::checked_copy::copy(dst, src, len) }
}
