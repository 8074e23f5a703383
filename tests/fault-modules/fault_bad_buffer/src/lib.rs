//! Test module `fault_bad_buffer`: its probe calls `kapi_log` directly with
//! a pointer into the direct map beyond the end of RAM (a plausible module
//! address that no page maps). The kernel's read of it page-faults inside
//! the service; that must be reported as a fault of this module in
//! `kapi_log`, with the kernel left consistent (the service works for the
//! modules after it).

#![no_std]
// Calling the raw service needs `unsafe`; built only for the tests.
#![allow(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_bad_buffer",
    probe: probe,
}

unsafe extern "C" {
    fn kapi_log(level: u32, msg: *const u8, len: usize);
}

/// The direct map at 1 TiB of physical memory: not RAM on any test machine.
const UNMAPPED: usize = 0xffff_8100_0000_0000;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    info!("fault_bad_buffer: logging 16 bytes at {UNMAPPED:#x}");
    // SAFETY: deliberately passing memory that is not there; the kernel must
    // catch the fault of its own read.
    unsafe { kapi_log(3, UNMAPPED as *const u8, 16) };
    Err(ProbeError::io(format_args!(
        "kapi_log of unmapped {UNMAPPED:#x} returned"
    )))
}
