//! Module `e1000`: the Intel 82540EM gigabit NIC (PCI 8086:100e, QEMU's
//! default `-device e1000`). The probe binds every such device the `pci`
//! module finds, not just the first: for each it maps BAR0, reads the MAC
//! address from the EEPROM through the EERD register, checks it is a valid
//! unicast address and registers the device. It fails only if none works.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod eeprom;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use module_api::mmio::Mmio;
use module_api::msg::MsgBuf;
use module_api::pci::{self, Bar, KernelConfig, PciDevice};
use module_api::sync::OnceCell;
use module_api::time::KernelClock;
use module_api::{ProbeContext, ProbeError, device, info, warn};

module_api::module! {
    name: "e1000",
    depends: ["pci"],
    probe: probe,
    selftest: selftest,
}

/// Every bound NIC: its register window and the MAC address read at probe
/// time.
static NICS: OnceCell<Vec<(Mmio, [u8; 6])>> = OnceCell::new();

module_api::percpu! {
    /// EEPROM MAC address reads this CPU did.
    static MAC_READS: AtomicU64 = AtomicU64::new(0);
}

/// Reads the MAC address from the EEPROM, counting the read on this CPU.
fn read_mac(regs: &Mmio) -> Result<[u8; 6], ProbeError> {
    let mac = eeprom::read_mac(regs, &KernelClock)?;
    MAC_READS.this_cpu().fetch_add(1, Ordering::Relaxed);
    Ok(mac)
}

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

const VENDOR: u16 = 0x8086;
const DEVICE: u16 = 0x100e;
/// Size of the 82540EM register window (BAR0).
const REGS_LEN: u64 = 0x20000;

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let mut nics = Vec::new();
    let mut first_error = None;
    let mut dev = PciDevice::default();
    let mut index = 0;
    while pci_find_device(VENDOR, DEVICE, index, &mut dev) {
        index += 1;
        match bind(&dev) {
            Ok(nic) => nics.push(nic),
            Err(e) => {
                warn!("e1000: {dev}: not bound");
                first_error.get_or_insert(e);
            }
        }
    }
    if nics.is_empty() {
        return Err(first_error.unwrap_or_else(|| {
            ProbeError::no_device(format_args!("no PCI device {VENDOR:04x}:{DEVICE:04x}"))
        }));
    }
    let _ = NICS.set(nics);
    Ok(())
}

/// Binds one device: maps its registers, reads and checks its MAC address,
/// registers it.
fn bind(dev: &PciDevice) -> Result<(Mmio, [u8; 6]), ProbeError> {
    let Some(Bar::Memory { base, .. }) = dev.bar(0) else {
        return Err(ProbeError::unsupported(format_args!(
            "{dev}: BAR0 is not an assigned memory BAR ({:#010x})",
            dev.bars[0]
        )));
    };
    pci::enable(&KernelConfig, dev.bdf, pci::COMMAND_MEMORY);
    let regs = Mmio::map(base, REGS_LEN)?;
    let status = eeprom::check_status(&regs)?;
    let mac = read_mac(&regs)?;
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
    Ok((regs, mac))
}

/// After compaction: the EEPROM still gives the MAC address the probe read,
/// each read is counted on this CPU, and every CPU has its own count.
fn selftest() -> Result<(), ProbeError> {
    let nics = NICS
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("e1000 selftest before probe")))?;
    let before = MAC_READS.this_cpu().load(Ordering::Relaxed);
    for (regs, mac) in nics {
        eeprom::check_status(regs)?;
        let again = read_mac(regs)?;
        if again != *mac {
            return Err(ProbeError::io(format_args!(
                "EEPROM MAC changed since the probe"
            )));
        }
    }
    let after = MAC_READS.this_cpu().load(Ordering::Relaxed);
    if after != before + nics.len() as u64 {
        return Err(ProbeError::io(format_args!(
            "per-CPU MAC read count went from {before} to {after}, expected +{}",
            nics.len()
        )));
    }
    let cpus = module_api::percpu::check_each_cpu(&MAC_READS).map_err(|e| {
        ProbeError::io(format_args!(
            "per-CPU MAC read counts: {e:?} (CPUs must not share a copy)"
        ))
    })?;
    info!(
        "e1000: selftest: EEPROM MAC of {} NIC(s) read again, unchanged; {after} reads counted on this CPU, own count on each of {cpus} CPU(s)",
        nics.len()
    );
    Ok(())
}
