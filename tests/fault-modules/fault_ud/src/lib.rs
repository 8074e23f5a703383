//! Test module `fault_ud`: its probe executes `ud2`, so the CPU raises an
//! invalid-opcode exception (#UD).

#![no_std]
// `ud2` needs inline assembly; built only for the tests.
#![allow(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_ud",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    info!("fault_ud: executing ud2");
    // SAFETY: deliberately faulting: `ud2` raises #UD, which the kernel's
    // probe guard catches; nothing else happens.
    unsafe { core::arch::asm!("ud2", options(nostack, nomem)) };
    Err(ProbeError::io(format_args!("ud2 did not fault")))
}
