//! Module `virtio_net`: a virtio network device (PCI 1af4:1000, legacy
//! transport). The probe initialises the device and reads its MAC address
//! (and link status if offered); on any failure after the reset the device
//! is reset again.

#![no_std]
#![forbid(unsafe_code)]

use module_api::msg::MsgBuf;
use module_api::pci::PciDevice;
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "virtio_net",
    depends: ["pci"],
    probe: probe,
    selftest: selftest,
}

/// The register block and the MAC address read at probe time.
static NIC: OnceCell<(virtio::Legacy<module_api::ports::Ports>, [u8; 6])> = OnceCell::new();

fn read_mac(regs: &virtio::Legacy<module_api::ports::Ports>) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = regs.config8(CFG_MAC + i as u16);
    }
    m
}

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

/// Feature: the configuration holds a MAC address.
const F_MAC: u32 = 1 << 5;
/// Feature: the configuration holds a link status.
const F_STATUS: u32 = 1 << 16;
/// Configuration: MAC address (6 bytes).
const CFG_MAC: u16 = 0;
/// Configuration: status (u16, bit 0 link up).
const CFG_STATUS: u16 = 6;
/// Header plus the configuration fields read.
const REGS_LEN: u16 = virtio::legacy_config_end(8);

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let (dev, regs) = virtio::open(pci_find_device, "virtio-net", 0x1000, 0x1041, REGS_LEN)?;
    let session = regs.begin(F_MAC | F_STATUS)?;
    let features = session.features();
    if features & F_MAC == 0 {
        return Err(ProbeError::unsupported(format_args!(
            "virtio-net {dev} offers no MAC address"
        )));
    }
    let m = read_mac(&regs);
    if m == [0; 6] || m[0] & 1 != 0 {
        return Err(ProbeError::io(format_args!(
            "virtio-net {dev} reports an invalid MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )));
    }
    let link = if features & F_STATUS != 0 {
        if regs.config16(CFG_STATUS) & 1 != 0 {
            "up"
        } else {
            "down"
        }
    } else {
        "unknown"
    };
    let status = session.finish()?;
    let name = MsgBuf::<40>::format(format_args!(
        "eth virtio {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    ));
    info!(
        "virtio_net: {dev} {}, link {link}, status {status:#04x}",
        name.as_str()
    );
    device::register(name.as_str())?;
    let _ = NIC.set((regs, m));
    Ok(())
}

/// After compaction: the device reports the same MAC address.
fn selftest() -> Result<(), ProbeError> {
    let (regs, mac) = NIC
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("virtio_net selftest before probe")))?;
    if read_mac(regs) != *mac {
        return Err(ProbeError::io(format_args!("MAC changed since the probe")));
    }
    info!("virtio_net: selftest: MAC read again, unchanged");
    Ok(())
}
