//! PCI configuration space and the [`PciDevice`] record modules share.

use crate::sys;
use core::fmt;
pub use modabi::bdf;

/// Configuration-space access. [`KernelConfig`] goes through the kernel's
/// mechanism-1 service; host tests implement it over a fake bus.
pub trait ConfigSpace {
    /// Reads `width` (1, 2 or 4) bytes at `offset` of function `bdf`; all
    /// ones if the function does not exist.
    fn read(&self, bdf: u32, offset: u8, width: u8) -> u32;
    /// Writes `width` bytes at `offset` of function `bdf`.
    fn write(&self, bdf: u32, offset: u8, width: u8, value: u32);
}

/// The kernel's configuration-space service.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelConfig;

impl ConfigSpace for KernelConfig {
    fn read(&self, bdf: u32, offset: u8, width: u8) -> u32 {
        // SAFETY: configuration reads have no memory-safety preconditions;
        // the kernel validates bdf, offset and width.
        unsafe { sys::kapi_pci_read(bdf, offset.into(), width.into()) }
    }
    fn write(&self, bdf: u32, offset: u8, width: u8, value: u32) {
        // SAFETY: as in `read`.
        unsafe { sys::kapi_pci_write(bdf, offset.into(), width.into(), value) }
    }
}

/// Reads a byte of configuration space.
pub fn read_config8(bdf: u32, offset: u8) -> u8 {
    KernelConfig.read(bdf, offset, 1) as u8
}
/// Reads 16 bits of configuration space.
pub fn read_config16(bdf: u32, offset: u8) -> u16 {
    KernelConfig.read(bdf, offset, 2) as u16
}
/// Reads 32 bits of configuration space.
pub fn read_config32(bdf: u32, offset: u8) -> u32 {
    KernelConfig.read(bdf, offset, 4)
}
/// Writes a byte of configuration space.
pub fn write_config8(bdf: u32, offset: u8, value: u8) {
    KernelConfig.write(bdf, offset, 1, value.into())
}
/// Writes 16 bits of configuration space.
pub fn write_config16(bdf: u32, offset: u8, value: u16) {
    KernelConfig.write(bdf, offset, 2, value.into())
}
/// Writes 32 bits of configuration space.
pub fn write_config32(bdf: u32, offset: u8, value: u32) {
    KernelConfig.write(bdf, offset, 4, value)
}

/// Command register offset.
pub const COMMAND: u8 = 0x04;
/// Command bit: respond to I/O space accesses.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command bit: respond to memory space accesses.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command bit: may act as bus master (DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// Sets `bits` in the command register of `bdf`.
pub fn enable(cs: &impl ConfigSpace, bdf: u32, bits: u16) {
    let cmd = cs.read(bdf, COMMAND, 2) as u16;
    if cmd & bits != bits {
        cs.write(bdf, COMMAND, 2, (cmd | bits).into());
    }
}

/// A decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// I/O space at this port.
    Io(u16),
    /// Memory space at this physical address.
    Memory {
        /// Physical base address.
        base: u64,
        /// Prefetchable.
        prefetchable: bool,
    },
}

/// One PCI function as the `pci` module reports it; shared by modules over
/// the C ABI (`pci_find_device`, `pci_find_class`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciDevice {
    /// Bus/device/function as packed by [`bdf`].
    pub bdf: u32,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Base class code.
    pub class: u8,
    /// Subclass code.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Header type (bit 7: multi-function).
    pub header_type: u8,
    /// Interrupt line as the firmware set it.
    pub irq_line: u8,
    /// Raw BARs (only 0..2 are meaningful for bridges).
    pub bars: [u32; 6],
}

impl PciDevice {
    /// Reads the header of `bdf`; `None` if no function answers there.
    pub fn read(cs: &impl ConfigSpace, bdf: u32) -> Option<PciDevice> {
        let id = cs.read(bdf, 0x00, 4);
        let vendor = id as u16;
        if vendor == 0xffff || vendor == 0 {
            return None;
        }
        let class = cs.read(bdf, 0x08, 4);
        let header_type = cs.read(bdf, 0x0e, 1) as u8;
        let nbars = if header_type & 0x7f == 0 { 6 } else { 2 };
        let mut bars = [0u32; 6];
        for (i, bar) in bars.iter_mut().enumerate().take(nbars) {
            *bar = cs.read(bdf, 0x10 + 4 * i as u8, 4);
        }
        Some(PciDevice {
            bdf,
            vendor,
            device: (id >> 16) as u16,
            class: (class >> 24) as u8,
            subclass: (class >> 16) as u8,
            prog_if: (class >> 8) as u8,
            header_type,
            irq_line: cs.read(bdf, 0x3c, 1) as u8,
            bars,
        })
    }

    /// Bus number.
    pub fn bus(&self) -> u8 {
        (self.bdf >> 8) as u8
    }
    /// Device number.
    pub fn dev(&self) -> u8 {
        ((self.bdf >> 3) & 0x1f) as u8
    }
    /// Function number.
    pub fn func(&self) -> u8 {
        (self.bdf & 7) as u8
    }

    /// Decodes BAR `i` (a 64-bit memory BAR takes its upper half from
    /// BAR `i + 1`); `None` if unimplemented or unassigned.
    pub fn bar(&self, i: usize) -> Option<Bar> {
        let raw = *self.bars.get(i)?;
        if raw & 1 == 1 {
            let port = (raw & 0xffff_fffc) as u16;
            return (port != 0).then_some(Bar::Io(port));
        }
        let low = u64::from(raw & 0xffff_fff0);
        let base = if (raw >> 1) & 3 == 2 {
            low | u64::from(*self.bars.get(i + 1)?) << 32
        } else {
            low
        };
        (base != 0).then_some(Bar::Memory {
            base,
            prefetchable: raw & 8 != 0,
        })
    }
}

impl fmt::Display for PciDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}",
            self.bus(),
            self.dev(),
            self.func(),
            self.vendor,
            self.device,
            self.class,
            self.subclass,
            self.prog_if
        )
    }
}

/// A fake configuration space for host tests (also used by driver crates).
#[cfg(not(target_os = "none"))]
pub mod fake {
    use super::ConfigSpace;
    use core::cell::RefCell;

    /// Up to 8 functions, each 256 bytes of configuration space.
    pub struct FakeBus {
        funcs: RefCell<[(u32, [u8; 256]); 8]>,
        used: usize,
    }

    impl Default for FakeBus {
        fn default() -> Self {
            Self::new()
        }
    }

    impl FakeBus {
        /// An empty bus (every read returns all ones).
        pub fn new() -> Self {
            FakeBus {
                funcs: RefCell::new([(u32::MAX, [0; 256]); 8]),
                used: 0,
            }
        }

        /// Adds function `bdf` with ids, class triple and header type.
        pub fn add(&mut self, bdf: u32, vendor: u16, device: u16, class: [u8; 3], header: u8) {
            let mut cfg = [0u8; 256];
            cfg[0..2].copy_from_slice(&vendor.to_le_bytes());
            cfg[2..4].copy_from_slice(&device.to_le_bytes());
            cfg[9] = class[2];
            cfg[10] = class[1];
            cfg[11] = class[0];
            cfg[0x0e] = header;
            self.funcs.get_mut()[self.used] = (bdf, cfg);
            self.used += 1;
        }

        /// Sets 32 bits at `offset` of `bdf`.
        pub fn set32(&self, bdf: u32, offset: u8, value: u32) {
            self.write(bdf, offset, 4, value);
        }
    }

    impl ConfigSpace for FakeBus {
        fn read(&self, bdf: u32, offset: u8, width: u8) -> u32 {
            let funcs = self.funcs.borrow();
            let Some((_, cfg)) = funcs.iter().find(|(b, _)| *b == bdf) else {
                return u32::MAX;
            };
            let mut v = [0u8; 4];
            let o = offset as usize;
            v[..width as usize].copy_from_slice(&cfg[o..o + width as usize]);
            u32::from_le_bytes(v)
        }
        fn write(&self, bdf: u32, offset: u8, width: u8, value: u32) {
            let mut funcs = self.funcs.borrow_mut();
            if let Some((_, cfg)) = funcs.iter_mut().find(|(b, _)| *b == bdf) {
                let o = offset as usize;
                cfg[o..o + width as usize].copy_from_slice(&value.to_le_bytes()[..width as usize]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeBus;
    use super::*;

    #[test]
    fn reads_header_and_bars() {
        let mut bus = FakeBus::new();
        let e1000 = bdf(0, 3, 0);
        bus.add(e1000, 0x8086, 0x100e, [2, 0, 0], 0);
        bus.set32(e1000, 0x10, 0xfebc_0000);
        bus.set32(e1000, 0x14, 0xc001);
        bus.set32(e1000, 0x18, 0xfe00_000c);
        bus.set32(e1000, 0x1c, 0x1);
        let d = PciDevice::read(&bus, e1000).unwrap();
        assert_eq!((d.vendor, d.device, d.class), (0x8086, 0x100e, 2));
        assert_eq!(
            d.bar(0),
            Some(Bar::Memory {
                base: 0xfebc_0000,
                prefetchable: false
            })
        );
        assert_eq!(d.bar(1), Some(Bar::Io(0xc000)));
        assert_eq!(
            d.bar(2),
            Some(Bar::Memory {
                base: 0x1_fe00_0000,
                prefetchable: true
            })
        );
        assert_eq!(d.bar(5), None);
        assert_eq!(format!("{d}"), "00:03.0 8086:100e class 02.00.00");
        assert!(PciDevice::read(&bus, bdf(0, 4, 0)).is_none());
        enable(&bus, e1000, COMMAND_MEMORY | COMMAND_BUS_MASTER);
        assert_eq!(bus.read(e1000, COMMAND, 2), 6);
    }
}
