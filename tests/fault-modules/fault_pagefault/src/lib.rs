//! Test module `fault_pagefault`: its probe reads an address no page table
//! maps (above the 4 GiB direct map, below the MMIO window), so the CPU
//! raises a page fault (#PF) inside the probe. The kernel must expunge the
//! module and carry on.

#![no_std]
// The one purpose of this module is a real CPU fault, which needs a raw
// memory access; it is built only for the tests.
#![allow(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_pagefault",
    probe: probe,
}

/// Canonical, kernel half, and mapped by nothing.
const UNMAPPED: u64 = 0xffff_9000_0000_0000;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    info!("fault_pagefault: reading {UNMAPPED:#x}");
    let value: u64;
    // SAFETY: deliberately faulting. The load through inline assembly (not a
    // Rust dereference, so there is no undefined behaviour for the compiler
    // to exploit) traps with #PF; the kernel's probe guard catches it and
    // this function never continues.
    unsafe {
        core::arch::asm!(
            "mov {v}, qword ptr [{a}]",
            a = in(reg) core::hint::black_box(UNMAPPED),
            v = out(reg) value,
            options(nostack, readonly),
        );
    }
    Err(ProbeError::io(format_args!(
        "read of unmapped {UNMAPPED:#x} did not fault (got {value:#x})"
    )))
}
