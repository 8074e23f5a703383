//! Module `bochs_vga`: QEMU's standard VGA (PCI 1234:1111). The probe finds
//! the PCI device through the `pci` module and asks the Bochs DISPI
//! interface (index port 0x1CE, data port 0x1CF) for its version, which
//! must be 0xB0C0..=0xB0C5, and for its video memory size.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod dispi;

use module_api::pci::{Bar, PciDevice};
use module_api::ports::Ports;
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "bochs_vga",
    depends: ["pci"],
    probe: probe,
    selftest: selftest,
}

/// The DISPI ports and what they reported at probe time.
static DISPI: OnceCell<(Ports, dispi::Dispi)> = OnceCell::new();

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

const VENDOR: u16 = 0x1234;
const DEVICE: u16 = 0x1111;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut dev = PciDevice::default();
    if !pci_find_device(VENDOR, DEVICE, 0, &mut dev) {
        return Err(ProbeError::no_device(format_args!(
            "no PCI device {VENDOR:04x}:{DEVICE:04x}"
        )));
    }
    // Index at 0x1ce, 16-bit data at 0x1cf..=0x1d0.
    let ports = Ports::claim(dispi::INDEX_PORT, 3)?;
    let info = dispi::identify(&ports)?;
    let fb = match dev.bar(0) {
        Some(Bar::Memory { base, .. }) => base,
        _ => 0,
    };
    info!(
        "bochs_vga: {dev} DISPI {:#06x}, {} KiB video memory, framebuffer {fb:#x}",
        info.version, info.video_kib
    );
    device::register("bochs-vga")?;
    let _ = DISPI.set((ports, info));
    Ok(())
}

/// After compaction: the DISPI interface reports the same version and
/// video memory.
fn selftest() -> Result<(), ProbeError> {
    let (ports, info) = DISPI
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("bochs_vga selftest before probe")))?;
    let again = dispi::identify(ports)?;
    if again != *info {
        return Err(ProbeError::io(format_args!(
            "DISPI now reports {:#06x}, probe saw {:#06x}",
            again.version, info.version
        )));
    }
    info!("bochs_vga: selftest: DISPI {:#06x} again", again.version);
    Ok(())
}
