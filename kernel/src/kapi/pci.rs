//! `kapi_pci_*`: PCI configuration space through mechanism 1 (ports
//! 0xCF8/0xCFC, which the kernel keeps for itself).

use super::service;
use spin::Mutex;

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
    // Interrupts off: a module's IRQ handler may read configuration space.
    let dword = crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        // SAFETY: 0xCF8/0xCFC are the PCI configuration ports, owned by the
        // kernel and serialised by LOCK.
        unsafe {
            super::ports::port_write(0xcf8, 4, address(bdf, offset));
            super::ports::port_read(0xcfc, 4)
        }
    });
    let shift = (offset & 3) * 8;
    match width {
        4 => dword,
        w => (dword >> shift) & ((1u32 << (w * 8)) - 1),
    }
}

/// Writes `width` bytes at `offset` of function `bdf`'s configuration space.
pub fn write(bdf: u32, offset: u32, width: u32, value: u32) {
    if offset >= 256 || !matches!(width, 1 | 2 | 4) || !offset.is_multiple_of(width) {
        return;
    }
    crate::arch::without_interrupts(|| {
        let _g = LOCK.lock();
        // SAFETY: as in `read`; a narrow write is a read-modify-write of the
        // dword.
        unsafe {
            super::ports::port_write(0xcf8, 4, address(bdf, offset));
            let v = if width == 4 {
                value
            } else {
                let shift = (offset & 3) * 8;
                let mask = ((1u32 << (width * 8)) - 1) << shift;
                (super::ports::port_read(0xcfc, 4) & !mask) | ((value << shift) & mask)
            };
            super::ports::port_write(0xcfc, 4, v);
        }
    })
}

/// `kapi_pci_read`.
pub extern "C" fn kapi_pci_read(bdf: u32, offset: u32, width: u32) -> u32 {
    service(|| read(bdf, offset, width))
}
crate::export_symbol!(kapi_pci_read);

/// `kapi_pci_write`.
pub extern "C" fn kapi_pci_write(bdf: u32, offset: u32, width: u32, value: u32) {
    service(|| write(bdf, offset, width, value))
}
crate::export_symbol!(kapi_pci_write);
