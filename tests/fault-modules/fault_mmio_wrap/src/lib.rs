//! Test module `fault_mmio_wrap`: its probe claims a page of the MMIO hole,
//! then calls `kapi_mmio_read` directly at `2^64 - 2`, whose end wraps
//! around. The kernel must refuse it as an access outside the claim (a
//! violation), not perform it.

#![no_std]
// Calling the raw service needs `unsafe`; built only for the tests.
#![allow(unsafe_code)]

use module_api::mmio::Mmio;
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_mmio_wrap",
    probe: probe,
}

unsafe extern "C" {
    fn kapi_mmio_read(addr: u64, width: u32) -> u64;
}

/// A page at the start of the MMIO hole, which no emulated device uses.
const PHYS: u64 = 0xc000_0000;
/// Aligned for two bytes; `ADDR + 2` wraps to 0.
const ADDR: u64 = u64::MAX - 1;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let page = Mmio::map(PHYS, 0x1000)?;
    info!(
        "fault_mmio_wrap: claimed {:#x}+{:#x}, reading {ADDR:#x}",
        page.phys(),
        page.len()
    );
    // SAFETY: deliberately out of range; the kernel must refuse it.
    let v = unsafe { kapi_mmio_read(ADDR, 2) };
    Err(ProbeError::io(format_args!(
        "MMIO read at {ADDR:#x} returned {v:#x}"
    )))
}
