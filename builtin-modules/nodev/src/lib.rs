//! Module `nodev`: a driver for PCI device 1d0f:feed, an id no emulated
//! machine uses, so its probe fails ("no PCI device 1d0f:feed") and the
//! kernel expunges it. The canonical example of a reclaimed module.

#![no_std]
#![forbid(unsafe_code)]

use module_api::pci::PciDevice;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "nodev",
    depends: ["pci"],
    probe: probe,
}

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

const VENDOR: u16 = 0x1d0f;
const DEVICE: u16 = 0xfeed;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut dev = PciDevice::default();
    if !pci_find_device(VENDOR, DEVICE, 0, &mut dev) {
        return Err(ProbeError::no_device(format_args!(
            "no PCI device {VENDOR:04x}:{DEVICE:04x}"
        )));
    }
    info!("nodev: found {dev}");
    device::register("nodev0")
}
