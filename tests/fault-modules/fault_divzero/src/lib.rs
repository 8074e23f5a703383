//! Test module `fault_divzero`: its probe executes `div` with a zero
//! divisor, so the CPU raises a divide error (#DE). (Rust's `/` checks for
//! zero and panics instead, which is not the fault this module is for.)

#![no_std]
// A real #DE needs the `div` instruction itself; built only for the tests.
#![allow(unsafe_code)]

use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_divzero",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let divisor = core::hint::black_box(0u32);
    info!("fault_divzero: dividing 1 by {divisor}");
    let quotient: u32;
    // SAFETY: deliberately faulting: `div` by zero raises #DE, which the
    // kernel's probe guard catches; no memory is touched.
    unsafe {
        core::arch::asm!(
            "xor edx, edx",
            "div {d:e}",
            d = in(reg) divisor,
            inout("eax") 1u32 => quotient,
            out("edx") _,
            options(nostack, nomem),
        );
    }
    Err(ProbeError::io(format_args!(
        "div by {divisor} did not fault (quotient {quotient})"
    )))
}
