//! Module `uart_com4`: the 16550 UART on COM4 (see the `uart16550` crate).

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};
use uart16550::COM4 as PORT;

module_api::module! {
    name: "uart_com4",
    probe: probe,
    selftest: selftest,
}

fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    uart16550::probe(ctx, PORT, false)
}

fn selftest() -> Result<(), ProbeError> {
    uart16550::selftest(PORT)
}
