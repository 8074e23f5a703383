//! Test module `fault_irq_owner`: its probe registers a handler for IRQ 6
//! (the floppy controller's line) and succeeds, so it is kept. The handler
//! page-faults. `fault_irq_raise`, probed later, makes the floppy
//! controller raise IRQ 6: the kernel must blame this module (not the one
//! being probed), acknowledge the interrupt, disable the line and mark this
//! module as faulted.

#![no_std]
// The handler's fault is a raw memory access; built only for the tests.
#![allow(unsafe_code)]

use module_api::irq::{self, IrqHandler};
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_irq_owner",
    probe: probe,
}

/// The floppy controller's IRQ line.
const IRQ: u8 = 6;
/// Canonical, kernel half, and mapped by nothing.
const UNMAPPED: u64 = 0xffff_9000_0000_0000;

struct Faulty;

impl IrqHandler for Faulty {
    fn handle(&self) {
        let value: u64;
        // SAFETY: deliberately faulting (see fault_pagefault): the load
        // traps with #PF and the kernel's guard around the handler catches
        // it; this function never continues.
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr [{a}]",
                a = in(reg) core::hint::black_box(UNMAPPED),
                v = out(reg) value,
                options(nostack, readonly),
            );
        }
        info!("fault_irq_owner: read {value:#x} from an unmapped address");
    }
}

static HANDLER: Faulty = Faulty;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    irq::register(IRQ, &HANDLER)?;
    info!("fault_irq_owner: handler on IRQ {IRQ}; it faults when the line fires");
    Ok(())
}
