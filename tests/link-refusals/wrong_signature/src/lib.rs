//! Test module `wrong_signature`: imports `pci_find_device` with its index
//! as a `u16`, where the `pci` module exports it taking a `u32`. Safe code
//! all the same: only the prelinker's signature check stands between this
//! module and a call with the wrong argument layout, so the link must fail.

#![no_std]
#![forbid(unsafe_code)]

use module_api::pci::PciDevice;
use module_api::{ProbeContext, ProbeError};

module_api::module! {
    name: "wrong_signature",
    depends: ["pci"],
    probe: probe,
}

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u16, out: &mut PciDevice) -> bool;
}

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut dev = PciDevice::default();
    if pci_find_device(0x8086, 0x100e, 0, &mut dev) {
        Ok(())
    } else {
        Err(ProbeError::no_device(format_args!("no e1000")))
    }
}
