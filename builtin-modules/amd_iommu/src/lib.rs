//! Module `amd_iommu`: the AMD I/O virtualisation unit. The probe reads the
//! ACPI "IVRS" table (QEMU's default machine has none: "no IVRS table"),
//! takes the first IVHD block's register base, maps it and reads the
//! extended feature and control registers.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod ivrs;

use module_api::acpi::{self, Status, Table};
use module_api::mmio::Mmio;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "amd_iommu",
    probe: probe,
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let bytes = acpi::load(b"IVRS", 0).map_err(|s| match s {
        Status::NotFound => ProbeError::no_device(format_args!("no IVRS table")),
        s => ProbeError::from_status(s, format_args!("cannot read the IVRS table: {s:?}")),
    })?;
    let table = Table::parse(b"IVRS", &bytes)
        .map_err(|e| ProbeError::io(format_args!("bad IVRS table: {e}")))?;
    let units = ivrs::ivhd_blocks(&table)?;
    let first = units
        .into_iter()
        .next()
        .ok_or_else(|| ProbeError::no_device(format_args!("IVRS table has no IVHD block")))?;
    let regs = Mmio::map(first.base, ivrs::REGS_LEN)?;
    let unit = ivrs::read_unit(&regs, first.base)?;
    info!(
        "amd_iommu: IVHD type {:#04x} device {:#06x} at {:#x}: features {:#018x}, control {:#018x}",
        first.kind, first.device_id, first.base, unit.features, unit.control
    );
    device::register("amd-iommu")
}
