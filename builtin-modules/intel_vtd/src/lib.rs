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
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "intel_vtd",
    probe: probe,
    selftest: selftest,
}

/// The remapping unit's registers, base and version read at probe time.
static UNIT: OnceCell<(Mmio, u64, u8, u8)> = OnceCell::new();

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
    device::register("intel-vtd")?;
    let _ = UNIT.set((regs, drhd.base, unit.major, unit.minor));
    Ok(())
}

/// After compaction: the unit reports the same architecture version.
fn selftest() -> Result<(), ProbeError> {
    let (regs, base, major, minor) = UNIT
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("intel_vtd selftest before probe")))?;
    let unit = dmar::read_unit(regs, *base)?;
    if (unit.major, unit.minor) != (*major, *minor) {
        return Err(ProbeError::io(format_args!(
            "version now {}.{}, probe saw {major}.{minor}",
            unit.major, unit.minor
        )));
    }
    info!("intel_vtd: selftest: version {major}.{minor} again");
    Ok(())
}
