//! Module `virtio_blk`: a virtio block device (PCI 1af4:1001, legacy
//! transport). The probe initialises the device and reads its capacity;
//! on any failure after the reset the device is reset again.

#![no_std]
#![forbid(unsafe_code)]

use module_api::msg::MsgBuf;
use module_api::pci::PciDevice;
use module_api::sync::OnceCell;
use module_api::{ProbeContext, ProbeError, device, info};

module_api::module! {
    name: "virtio_blk",
    depends: ["pci"],
    probe: probe,
    selftest: selftest,
}

/// The register block and the capacity read at probe time.
static DISK: OnceCell<(virtio::Legacy<module_api::ports::Ports>, u64)> = OnceCell::new();

module_api::import_fn! {
    fn pci_find_device(vendor: u16, device: u16, index: u32, out: &mut PciDevice) -> bool;
}

/// Feature: the device reports its block size.
const F_BLK_SIZE: u32 = 1 << 6;
/// Feature: read-only device.
const F_RO: u32 = 1 << 5;
/// Configuration: capacity in 512-byte sectors (u64).
const CFG_CAPACITY: u16 = 0;
/// Configuration: block size (u32, with F_BLK_SIZE).
const CFG_BLK_SIZE: u16 = 20;
/// Header plus the configuration fields read.
const REGS_LEN: u16 = virtio::legacy_config_end(24);

fn probe(_ctx: &mut ProbeContext) -> Result<(), ProbeError> {
    let (dev, regs) = virtio::open(pci_find_device, "virtio-blk", 0x1001, 0x1042, REGS_LEN)?;
    let session = regs.begin(F_BLK_SIZE | F_RO)?;
    let features = session.features();
    let sectors = regs.config64(CFG_CAPACITY);
    if sectors == 0 || sectors == u64::MAX {
        return Err(ProbeError::io(format_args!(
            "virtio-blk {dev} reports capacity {sectors:#x} sectors"
        )));
    }
    let block = if features & F_BLK_SIZE != 0 {
        regs.config32(CFG_BLK_SIZE)
    } else {
        512
    };
    let status = session.finish()?;
    let ro = if features & F_RO != 0 {
        ", read-only"
    } else {
        ""
    };
    info!(
        "virtio_blk: {dev} {sectors} sectors ({} MiB), block {block}{ro}, status {status:#04x}",
        sectors / 2048
    );
    let name = MsgBuf::<40>::format(format_args!("virtio-blk {sectors} sectors"));
    device::register(name.as_str())?;
    let _ = DISK.set((regs, sectors));
    Ok(())
}

/// After compaction: the device (left at DRIVER_OK) reports the same capacity.
fn selftest() -> Result<(), ProbeError> {
    let (regs, sectors) = DISK
        .get()
        .ok_or_else(|| ProbeError::io(format_args!("virtio_blk selftest before probe")))?;
    let again = regs.config64(CFG_CAPACITY);
    if again != *sectors {
        return Err(ProbeError::io(format_args!(
            "capacity now {again} sectors, probe saw {sectors}"
        )));
    }
    info!("virtio_blk: selftest: capacity {again} sectors again");
    Ok(())
}
