//! Runtime test module `rt_fail`: its probe takes heap memory, an I/O port
//! range and a device name, then fails. Loaded after boot, it must be
//! released like a failing built-in, and its bytes must go back to the
//! pools poisoned.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use module_api::ports::Ports;
use module_api::{ProbeContext, ProbeError, device};

module_api::module! {
    name: "rt_fail",
    probe: probe,
}

const ALLOC_BYTES: usize = 32 * 1024;
const PORT_BASE: u16 = 0x350;
const PORT_COUNT: u16 = 8;

/// Some writable state, so the module has a data class.
static STATE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut block: Vec<u8> = Vec::new();
    if block.try_reserve_exact(ALLOC_BYTES).is_err() {
        return Err(ProbeError::no_memory(format_args!("rt_fail: no memory")));
    }
    block.resize(ALLOC_BYTES, 0x5a);
    core::mem::forget(block);
    let _ports = Ports::claim(PORT_BASE, PORT_COUNT)?;
    device::register("rt-fail")?;
    STATE.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    Err(ProbeError::io(format_args!(
        "rt_fail: deliberate failure holding {ALLOC_BYTES} bytes, ports {PORT_BASE:#x}+{PORT_COUNT} and a device"
    )))
}
