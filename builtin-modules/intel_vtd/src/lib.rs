//! Module `intel_vtd`: an Intel VT-d DMA remapping unit. The probe reads the
//! ACPI "DMAR" table (present with `-M q35 -device intel-iommu`), takes the
//! first DRHD unit's register base, maps it and checks the version and
//! capability registers.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod dmar;

use module_api::acpi::{self, Status, Table};
use module_api::mmio::Mmio;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "intel_vtd",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let bytes = acpi::load(b"DMAR", 0).map_err(|s| match s {
        Status::NotFound => ProbeError::no_device(format_args!("no DMAR table")),
        s => ProbeError::from_status(s, format_args!("cannot read the DMAR table: {s:?}")),
    })?;
    let table = Table::parse(b"DMAR", &bytes)
        .map_err(|e| ProbeError::io(format_args!("bad DMAR table: {e}")))?;
    let (drhd, count) = dmar::first_drhd(&table)?;
    let regs = Mmio::map(drhd.base, dmar::REGS_LEN)?;
    let unit = dmar::read_unit(&regs, drhd.base)?;
    info!(
        "intel_vtd: {count} DRHD unit(s); segment {} at {:#x}: version {}.{}, cap {:#018x}, ecap {:#018x}",
        drhd.segment, drhd.base, unit.major, unit.minor, unit.cap, unit.ecap
    );
    device::register("intel-vtd")
}
