//! Memory a module passes to a service (a log line, a name, a buffer to
//! fill): checked against the service's length limit, then copied through
//! [`crate::mm::module_mem`] (which refuses memory a module cannot own and
//! survives bad pointers); every refusal is an error of the service.

use crate::mm::module_mem::{self, Refused};
use crate::modules::guard::Abort;
use alloc::vec::Vec;

/// Checks a module buffer `addr`+`len` (at most `limit` bytes).
fn check(service: &'static str, addr: u64, len: usize, limit: usize) -> Result<(), Abort> {
    if len > limit {
        return Err(Abort::violation(format_args!(
            "{service}: buffer of {len} bytes exceeds the {limit}-byte limit"
        )));
    }
    module_mem::check(addr, len).map_err(|r| refused(service, addr, len, r))
}

/// The service's error for a refused buffer or a faulted copy.
fn refused(service: &'static str, addr: u64, len: usize, r: Refused) -> Abort {
    match r {
        Refused::Wraps => Abort::violation(format_args!(
            "{service}: buffer {addr:#x}+{len} wraps around the address space"
        )),
        Refused::NotModuleMemory => Abort::violation(format_args!(
            "{service}: buffer {addr:#x}+{len} is not memory a module can own"
        )),
        Refused::Fault(f) => Abort::ServiceFault {
            service,
            vector: f.vector,
            addr: f.addr,
            buf: addr,
            len,
        },
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
    module_mem::read(addr, &mut out[..n]).map_err(|r| refused(service, addr, len, r))?;
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
    module_mem::write(addr, bytes).map_err(|r| refused(service, addr, bytes.len(), r))
}
