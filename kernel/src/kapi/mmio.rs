//! `kapi_mmio_*`: device memory, only inside ranges the module claimed
//! (the window and its registry are [`crate::hw::mmio`]'s). Modules reach
//! device memory only through these services.

use super::{buffer, owner, resources, service};
use crate::hw::mmio::{self, ClaimError, Refused};
use crate::modules::guard::Abort;
use modabi::Status;

/// Claims `[phys, phys + len)` for the running module and writes the
/// virtual address it is reached through to `virt_out`: `Invalid` for an
/// empty or wrapping range, `NotFound` outside the MMIO hole, `Busy` if
/// any of it is claimed already.
pub extern "C" fn kapi_mmio_map(phys: u64, len: u64, virt_out: *mut u64) -> i32 {
    service("kapi_mmio_map", || {
        let me = owner();
        let virt = match mmio::claim(phys, len, me) {
            Ok(v) => v,
            Err(ClaimError::Invalid) => return Ok(Status::Invalid as i32),
            Err(ClaimError::Outside) => return Ok(Status::NotFound as i32),
            Err(ClaimError::Busy) => return Ok(Status::Busy as i32),
        };
        resources::with(me, |r| r.mmio.push((phys, len)));
        buffer::write("kapi_mmio_map", virt_out.cast(), &virt.to_ne_bytes(), 8)?;
        Ok(Status::Ok as i32)
    })
}
crate::export_symbol!(kapi_mmio_map);

/// An access of the running module (`value` `None` reads).
fn access(addr: u64, width: u32, value: Option<u64>) -> Result<u64, Abort> {
    mmio::access(owner(), addr, width, value).map_err(|r| match r {
        Refused::Width => {
            Abort::violation(format_args!("MMIO access of width {width} at {addr:#x}"))
        }
        Refused::Unclaimed => {
            Abort::violation(format_args!("access to unclaimed MMIO address {addr:#x}"))
        }
    })
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
