//! Test module `fault_hostile`: through the safe module API only, its probe
//! passes hostile arguments to the kernel's services: allocations far
//! larger than the heap, MMIO ranges that wrap or leave the MMIO hole, an
//! I/O port range that wraps, an IRQ line that does not exist. Each must be
//! refused with an error (never a hang or a kernel panic); the probe then
//! fails naming what each refusal was, so the report shows them.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt::Write;
use module_api::irq::{self, IrqHandler};
use module_api::mmio::Mmio;
use module_api::msg::MsgBuf;
use module_api::ports::Ports;
use module_api::{ProbeContext, ProbeError, info};

module_api::module! {
    name: "fault_hostile",
    probe: probe,
}

struct Handler;

impl IrqHandler for Handler {
    fn handle(&self) {}
}

static HANDLER: Handler = Handler;

/// A type whose alignment no heap block has.
#[repr(C, align(536870912))]
struct Huge(u8);

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut out = MsgBuf::<112>::new();
    let mut note = |what: &str, r: Result<(), ProbeError>| -> Result<(), ProbeError> {
        match r {
            Ok(()) => Err(ProbeError::io(format_args!("{what} was accepted"))),
            Err(e) => {
                info!("fault_hostile: {what}: {e}");
                let _ = write!(out, "{what} {}, ", e.kind().name());
                Ok(())
            }
        }
    };
    let mut v: Vec<u8> = Vec::new();
    note(
        "alloc",
        v.try_reserve_exact(1 << 40)
            .map_err(|_| ProbeError::no_memory(format_args!("1 TiB"))),
    )?;
    let mut h: Vec<Huge> = Vec::new();
    note(
        "align",
        h.try_reserve_exact(1)
            .map_err(|_| ProbeError::no_memory(format_args!("512 MiB alignment"))),
    )?;
    note("mmio-wrap", Mmio::map(0xfeb0_0000, u64::MAX).map(drop))?;
    note("mmio-far", Mmio::map(0xfeb0_0000, 1 << 40).map(drop))?;
    note("ports", Ports::claim(0xfff0, 0x20).map(drop))?;
    note("irq", irq::register(200, &HANDLER))?;
    Err(ProbeError::unsupported(format_args!(
        "{}",
        out.as_str().trim_end_matches(", ")
    )))
}
