//! Module `hpet`: the High Precision Event Timer. The probe reads the ACPI
//! "HPET" table for the register block's address, maps it, checks the
//! capabilities register, enables the main counter and checks that it
//! advances over a short delay at roughly the advertised rate.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod timer;

use module_api::acpi::{self, Status, Table};
use module_api::mmio::Mmio;
use module_api::mmio::MmioIo;
use module_api::sync::OnceCell;
use module_api::time::{self, KernelClock};
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "hpet",
    probe: probe,
    selftest: selftest,
}

/// The register block mapped at probe time.
static REGS: OnceCell<Mmio> = OnceCell::new();

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let bytes = acpi::load(b"HPET", 0).map_err(|s| match s {
        Status::NotFound => ProbeError::no_device(format_args!("no HPET table")),
        s => ProbeError::from_status(s, format_args!("cannot read the HPET table: {s:?}")),
    })?;
    let table = Table::parse(b"HPET", &bytes)
        .map_err(|e| ProbeError::io(format_args!("bad HPET table: {e}")))?;
    let base = timer::base_address(&table)?;
    let regs = Mmio::map(base, timer::REGS_LEN)?;
    let t = timer::start(&regs, &KernelClock)?;
    info!(
        "hpet: {base:#x} vendor {:04x}, {} timers, period {} fs, counter advanced {} ticks in {} us",
        t.vendor,
        t.timers,
        t.period_fs,
        t.ticks,
        t.elapsed_ns / 1000
    );
    let _ = REGS.set(regs);
    device::register("hpet0")
}

/// After compaction: the counter enabled by the probe is still running.
fn selftest() -> Result<(), ProbeError> {
    let regs = REGS
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("hpet selftest before probe")))?;
    let c0 = regs.read64(timer::MAIN_COUNTER);
    time::delay_us(100);
    let c1 = regs.read64(timer::MAIN_COUNTER);
    if c1 <= c0 {
        return Err(ProbeError::io(format_args!(
            "counter did not advance: {c0:#x} then {c1:#x}"
        )));
    }
    info!(
        "hpet: selftest: counter advanced {} ticks in 100 us",
        c1 - c0
    );
    Ok(())
}
