//! The legacy (virtio 0.9.5) PCI transport, used by the `virtio_blk` and
//! `virtio_net` modules; QEMU's default `virtio-*-pci` devices are
//! transitional and offer it through I/O BAR0.
//!
//! Initialisation follows the specification's order: reset (and check the
//! status reads back 0), ACKNOWLEDGE, DRIVER, feature negotiation, then
//! DRIVER_OK once the driver has read what it needs. A [`Session`] resets
//! the device again if the probe gives up half way.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod legacy;

pub use legacy::{Legacy, Session, status};

use module_api::ProbeError;
use module_api::pci::{self, Bar, KernelConfig, PciDevice};
use module_api::ports::Ports;

/// Vendor id of virtio devices.
pub const VENDOR: u16 = 0x1af4;

/// Signature of the `pci` module's `pci_find_device` export.
pub type FindDevice = fn(u16, u16, u32, &mut PciDevice) -> bool;

/// Finds the first transitional device `legacy_id`, enables its I/O space
/// and claims `len` bytes of its legacy register block. A modern-only
/// device (`modern_id`) is reported as unsupported.
pub fn open(
    find: FindDevice,
    kind: &str,
    legacy_id: u16,
    modern_id: u16,
    len: u16,
) -> Result<(PciDevice, Legacy<Ports>), ProbeError> {
    let mut dev = PciDevice::default();
    if !find(VENDOR, legacy_id, 0, &mut dev) {
        if find(VENDOR, modern_id, 0, &mut dev) {
            return Err(ProbeError::unsupported(format_args!(
                "{kind} {dev} is modern-only; this driver speaks the legacy transport"
            )));
        }
        return Err(ProbeError::no_device(format_args!(
            "no PCI device {VENDOR:04x}:{legacy_id:04x} ({kind})"
        )));
    }
    let Some(Bar::Io(port)) = dev.bar(0) else {
        return Err(ProbeError::unsupported(format_args!(
            "{kind} {dev}: BAR0 is not an I/O BAR ({:#010x})",
            dev.bars[0]
        )));
    };
    pci::enable(&KernelConfig, dev.bdf, pci::COMMAND_IO);
    Ok((dev, Legacy::new(Ports::claim(port, len)?)))
}

/// Bytes of the legacy register block up to the end of `config_len` bytes
/// of device-specific configuration.
pub const fn legacy_config_end(config_len: u16) -> u16 {
    legacy::CONFIG + config_len
}
