//! Module `uart_com1`: the 16550 UART on COM1 (see the `uart16550` crate).
//! It also registers itself as the kernel console.

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};
use uart16550::COM1 as PORT;

module_api::module! {
    name: "uart_com1",
    probe: probe,
    selftest: selftest,
}

fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    uart16550::probe(ctx, PORT, true)
}

fn selftest() -> Result<(), ProbeError> {
    uart16550::selftest(PORT)
}
