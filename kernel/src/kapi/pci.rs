//! `kapi_pci_*`: PCI configuration space through mechanism 1 (ports
//! 0xCF8/0xCFC, which the kernel keeps for itself).

use super::{locked, ports::kernel_io, service};
use spin::Mutex;

/// Serialises the address/data port pair.
static LOCK: Mutex<()> = Mutex::new(());

fn address(bdf: u32, offset: u32) -> u32 {
    0x8000_0000 | (bdf & 0xffff) << 8 | (offset & 0xfc)
}

/// Reads `width` bytes (1, 2, 4) at `offset` of function `bdf`'s
/// configuration space; all ones if no function answers.
pub fn read(bdf: u32, offset: u32, width: u32) -> u32 {
    if offset >= 256 || !matches!(width, 1 | 2 | 4) || !offset.is_multiple_of(width) {
        return u32::MAX;
    }
    let dword = locked(&LOCK, |_| {
        kernel_io(0xcf8, 4, Some(address(bdf, offset)));
        kernel_io(0xcfc, 4, None)
    });
    let shift = (offset & 3) * 8;
    match width {
        4 => dword,
        w => (dword >> shift) & ((1u32 << (w * 8)) - 1),
    }
}

/// Writes `width` bytes at `offset` of function `bdf`'s configuration space
/// (a narrow write is a read-modify-write of the dword).
pub fn write(bdf: u32, offset: u32, width: u32, value: u32) {
    if offset >= 256 || !matches!(width, 1 | 2 | 4) || !offset.is_multiple_of(width) {
        return;
    }
    locked(&LOCK, |_| {
        kernel_io(0xcf8, 4, Some(address(bdf, offset)));
        let v = if width == 4 {
            value
        } else {
            let shift = (offset & 3) * 8;
            let mask = ((1u32 << (width * 8)) - 1) << shift;
            (kernel_io(0xcfc, 4, None) & !mask) | ((value << shift) & mask)
        };
        kernel_io(0xcfc, 4, Some(v));
    });
}

/// `kapi_pci_read`.
pub extern "C" fn kapi_pci_read(bdf: u32, offset: u32, width: u32) -> u32 {
    service("kapi_pci_read", || Ok(read(bdf, offset, width)))
}
crate::export_symbol!(kapi_pci_read);

/// `kapi_pci_write`.
pub extern "C" fn kapi_pci_write(bdf: u32, offset: u32, width: u32, value: u32) {
    service("kapi_pci_write", || {
        write(bdf, offset, width, value);
        Ok(())
    })
}
crate::export_symbol!(kapi_pci_write);
