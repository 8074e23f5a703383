//! Memory-mapped registers: map (and claim) a physical range, then access it
//! by offset through the kernel's MMIO service.

use crate::error::{ProbeError, status};
use crate::sys;

/// Register access by byte offset. [`Mmio`] is the hardware implementation;
/// drivers take `impl MmioIo` so their logic can be tested with a fake.
pub trait MmioIo {
    /// Reads 8 bits at `offset`.
    fn read8(&self, offset: u64) -> u8;
    /// Reads 16 bits at `offset`.
    fn read16(&self, offset: u64) -> u16;
    /// Reads 32 bits at `offset`.
    fn read32(&self, offset: u64) -> u32;
    /// Reads 64 bits at `offset`.
    fn read64(&self, offset: u64) -> u64;
    /// Writes 8 bits at `offset`.
    fn write8(&self, offset: u64, value: u8);
    /// Writes 16 bits at `offset`.
    fn write16(&self, offset: u64, value: u16);
    /// Writes 32 bits at `offset`.
    fn write32(&self, offset: u64, value: u32);
    /// Writes 64 bits at `offset`.
    fn write64(&self, offset: u64, value: u64);
}

/// A mapped and claimed MMIO range. Accesses outside it, or not naturally
/// aligned, panic (a driver bug).
#[derive(Debug)]
pub struct Mmio {
    phys: u64,
    virt: u64,
    len: u64,
}

impl Mmio {
    /// Claims `len` bytes of device memory at physical `phys` and maps them
    /// uncached. A range that is empty or wraps is unsupported, one outside
    /// the MMIO hole no-device, one already claimed busy.
    pub fn map(phys: u64, len: u64) -> Result<Mmio, ProbeError> {
        if phys == 0 || len == 0 {
            return Err(ProbeError::unsupported(format_args!(
                "invalid MMIO range {phys:#x}+{len:#x}"
            )));
        }
        let mut virt = 0u64;
        // SAFETY: mapping only records the claim and writes the address it
        // is reached through to `virt`, a local the kernel may write.
        let raw = unsafe { sys::kapi_mmio_map(phys, len, &mut virt) };
        status(raw).map_err(|s| {
            ProbeError::from_status(s, format_args!("cannot map MMIO {phys:#x}+{len:#x}: {s:?}"))
        })?;
        Ok(Mmio { phys, virt, len })
    }

    /// Physical base address.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty (never, for a mapped range).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn addr(&self, offset: u64, width: u64) -> u64 {
        let ok = offset.is_multiple_of(width)
            && offset.checked_add(width).is_some_and(|e| e <= self.len);
        if !ok {
            panic!(
                "MMIO offset {offset:#x} (width {width}) outside {:#x}+{:#x} or unaligned",
                self.phys, self.len
            );
        }
        self.virt + offset
    }

    fn read(&self, offset: u64, width: u64) -> u64 {
        let addr = self.addr(offset, width);
        // SAFETY: `addr` lies in the range this module mapped; the kernel
        // performs the (volatile) access and validates the address again.
        unsafe { sys::kapi_mmio_read(addr, width as u32) }
    }

    fn write(&self, offset: u64, width: u64, value: u64) {
        let addr = self.addr(offset, width);
        // SAFETY: as in `read`.
        unsafe { sys::kapi_mmio_write(addr, width as u32, value) }
    }
}

impl MmioIo for Mmio {
    fn read8(&self, offset: u64) -> u8 {
        self.read(offset, 1) as u8
    }
    fn read16(&self, offset: u64) -> u16 {
        self.read(offset, 2) as u16
    }
    fn read32(&self, offset: u64) -> u32 {
        self.read(offset, 4) as u32
    }
    fn read64(&self, offset: u64) -> u64 {
        self.read(offset, 8)
    }
    fn write8(&self, offset: u64, value: u8) {
        self.write(offset, 1, value.into())
    }
    fn write16(&self, offset: u64, value: u16) {
        self.write(offset, 2, value.into())
    }
    fn write32(&self, offset: u64, value: u32) {
        self.write(offset, 4, value.into())
    }
    fn write64(&self, offset: u64, value: u64) {
        self.write(offset, 8, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_alignment() {
        let m = Mmio {
            phys: 0xfed0_0000,
            virt: 0x1000,
            len: 0x400,
        };
        assert_eq!(m.addr(0xf0, 8), 0x10f0);
        assert_eq!(m.addr(0x3fc, 4), 0x13fc);
        assert!(std::panic::catch_unwind(|| m.addr(0x3fc, 8)).is_err());
        assert!(std::panic::catch_unwind(|| m.addr(0x2, 4)).is_err());
        assert!(std::panic::catch_unwind(|| m.addr(u64::MAX - 3, 4)).is_err());
    }
}
