//! Module `uart_com3`: the 16550 UART on COM3 (see the `uart16550` crate).

#![no_std]
#![forbid(unsafe_code)]

use module_api::{ProbeContext, ProbeError};
use uart16550::COM3 as PORT;

module_api::module! {
    name: "uart_com3",
    probe: probe,
    selftest: selftest,
}

fn probe(ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    uart16550::probe(ctx, PORT, false)
}

fn selftest() -> Result<(), ProbeError> {
    uart16550::selftest(PORT)
}
