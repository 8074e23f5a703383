//! Module `pci`: enumerates the PCI bus through configuration mechanism 1
//! (the kernel's `kapi_pci_read`), logs every function, and exports lookups
//! to later modules:
//!
//! - `pci_find_device(vendor, device, index, out: &mut PciDevice) -> bool`
//! - `pci_find_class(class, subclass, index, out: &mut PciDevice) -> bool`
//!
//! The probe fails if no host bridge answers at 00:00.0.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod scan;

use alloc::vec::Vec;
use module_api::pci::{KernelConfig, PciDevice};
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "pci",
    exports: [pci_find_device, pci_find_class],
    probe: probe,
    selftest: selftest,
}

/// Every function found at probe time.
static DEVICES: OnceCell<Vec<PciDevice>> = OnceCell::new();

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let cs = KernelConfig;
    scan::check_host_bridge(&cs)?;
    let devices = scan::enumerate(&cs);
    for d in &devices {
        info!("pci: {d}");
    }
    info!("pci: {} functions", devices.len());
    if DEVICES.set(devices).is_err() {
        return Err(ProbeError::busy(format_args!("pci probed twice")));
    }
    device::register("pci0")
}

/// After compaction: the bus enumerates to the same functions, and the
/// exported lookup (called through its own symbol) finds each of them.
fn selftest() -> Result<(), ProbeError> {
    let known = DEVICES
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("pci selftest before probe")))?;
    let now = scan::enumerate(&KernelConfig);
    if now != *known {
        return Err(ProbeError::io(format_args!(
            "bus now has {} functions, probe found {}",
            now.len(),
            known.len()
        )));
    }
    for d in known {
        let mut out = PciDevice::default();
        if !pci_find_device(d.vendor, d.device, 0, &mut out) || out.vendor != d.vendor {
            return Err(ProbeError::io(format_args!("lookup of {d} failed")));
        }
    }
    info!(
        "pci: selftest: {} functions re-enumerated and found",
        known.len()
    );
    Ok(())
}

fn find(index: u32, out: &mut PciDevice, pred: impl Fn(&PciDevice) -> bool) -> bool {
    let hit = DEVICES
        .get()
        .and_then(|all| all.iter().filter(|d| pred(d)).nth(index as usize));
    match hit {
        Some(d) => {
            *out = *d;
            true
        }
        None => false,
    }
}

module_api::export_fn! {
    /// The `index`th function with this vendor and device id.
    pub fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool {
        find(index, out, |d| d.vendor == vendor && d.device == device)
    }

    /// The `index`th function with this class and subclass.
    pub fn pci_find_class(class: u8, subclass: u8, index: u32, out: &mut PciDevice) -> bool {
        find(index, out, |d| d.class == class && d.subclass == subclass)
    }
}
