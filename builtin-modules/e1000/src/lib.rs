//! Module `e1000`: the Intel 82540EM gigabit NIC (PCI 8086:100e, QEMU's
//! default `-device e1000`). The probe finds the device through the `pci`
//! module, maps BAR0, reads the MAC address from the EEPROM through the EERD
//! register and checks it is a valid unicast address.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod eeprom;

use module_api::mmio::Mmio;
use module_api::msg::MsgBuf;
use module_api::pci::{self, Bar, KernelConfig, PciDevice};
use module_api::sync::OnceCell;
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "e1000",
    depends: ["pci"],
    probe: probe,
    selftest: selftest,
}

/// The register window and the MAC address read at probe time.
static NIC: OnceCell<(Mmio, [u8; 6])> = OnceCell::new();

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

const VENDOR: u16 = 0x8086;
const DEVICE: u16 = 0x100e;
/// Size of the 82540EM register window (BAR0).
const REGS_LEN: u64 = 0x20000;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut dev = PciDevice::default();
    if !pci_find_device(VENDOR, DEVICE, 0, &mut dev) {
        return Err(ProbeError::no_device(format_args!(
            "no PCI device {VENDOR:04x}:{DEVICE:04x}"
        )));
    }
    let Some(Bar::Memory { base, .. }) = dev.bar(0) else {
        return Err(ProbeError::unsupported(format_args!(
            "{dev}: BAR0 is not an assigned memory BAR ({:#010x})",
            dev.bars[0]
        )));
    };
    pci::enable(&KernelConfig, dev.bdf, pci::COMMAND_MEMORY);
    let regs = Mmio::map(base, REGS_LEN)?;
    let status = eeprom::check_status(&regs)?;
    let mac = eeprom::read_mac(&regs, &KernelClock)?;
    let m = mac;
    let name = MsgBuf::<40>::format(format_args!(
        "eth e1000 {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    ));
    info!(
        "e1000: {dev} regs {base:#x}, status {status:#010x}, {}",
        name.as_str()
    );
    device::register(name.as_str())?;
    let _ = NIC.set((regs, mac));
    Ok(())
}

/// After compaction: the EEPROM still gives the MAC address the probe read.
fn selftest() -> Result<(), ProbeError> {
    let (regs, mac) = NIC
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("e1000 selftest before probe")))?;
    eeprom::check_status(regs)?;
    let again = eeprom::read_mac(regs, &KernelClock)?;
    if again != *mac {
        return Err(ProbeError::io(format_args!(
            "EEPROM MAC changed since the probe"
        )));
    }
    info!("e1000: selftest: EEPROM MAC read again, unchanged");
    Ok(())
}
