//! Test module `fault_leak`: its probe acquires one of everything the kernel
//! tracks (heap memory, an IRQ handler, an I/O port range, a device), then
//! fails. The kernel must release all of it; a test can then see the
//! resources free again.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use module_api::irq::{self, IrqHandler};
use module_api::ports::Ports;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "fault_leak",
    probe: probe,
}

/// Bytes allocated and deliberately not freed.
const ALLOC_BYTES: usize = 64 * 1024;
/// An IRQ line no emulated device of the default machine uses.
const IRQ: u8 = 10;
/// A port range no emulated device of the default machine uses.
const PORT_BASE: u16 = 0x340;
const PORT_COUNT: u16 = 16;

struct Handler;

impl IrqHandler for Handler {
    fn handle(&self) {}
}

static HANDLER: Handler = Handler;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut block: Vec<u8> = Vec::new();
    if block.try_reserve_exact(ALLOC_BYTES).is_err() {
        return Err(ProbeError::no_memory(format_args!(
            "fault_leak: could not allocate {ALLOC_BYTES} bytes"
        )));
    }
    block.resize(ALLOC_BYTES, 0xa5);
    let addr = block.as_ptr() as usize;
    // Leaked on purpose: only the kernel's per-module tracking frees it.
    core::mem::forget(block);
    irq::register(IRQ, &HANDLER)?;
    let ports = Ports::claim(PORT_BASE, PORT_COUNT)?;
    device::register("fault-leak")?;
    info!(
        "fault_leak: holding {ALLOC_BYTES} bytes at {addr:#x}, IRQ {IRQ}, ports {:#x}+{}",
        ports.base(),
        ports.count()
    );
    Err(ProbeError::io(format_args!(
        "deliberate failure holding {ALLOC_BYTES} bytes, IRQ {IRQ}, ports {PORT_BASE:#x}+{PORT_COUNT} and a device"
    )))
}
