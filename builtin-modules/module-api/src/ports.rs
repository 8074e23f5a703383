//! I/O ports: claim a range, then access it by offset.

use crate::error::{ProbeError, status};
use crate::sys;

/// Register access by offset with 8-, 16- and 32-bit widths. [`Ports`] is
/// the hardware implementation; drivers take `impl PortIo` so their logic
/// can be tested on the host against a fake device.
pub trait PortIo {
    /// Reads a byte at `offset`.
    fn read8(&self, offset: u16) -> u8;
    /// Reads 16 bits at `offset`.
    fn read16(&self, offset: u16) -> u16;
    /// Reads 32 bits at `offset`.
    fn read32(&self, offset: u16) -> u32;
    /// Writes a byte at `offset`.
    fn write8(&self, offset: u16, value: u8);
    /// Writes 16 bits at `offset`.
    fn write16(&self, offset: u16, value: u16);
    /// Writes 32 bits at `offset`.
    fn write32(&self, offset: u16, value: u32);
}

/// A claimed range of I/O ports `base..base+count`. Accesses outside it
/// panic (a driver bug), which the kernel turns into an expunge.
#[derive(Debug)]
pub struct Ports {
    base: u16,
    count: u16,
}

impl Ports {
    /// Claims `count` ports from `base` for this module.
    pub fn claim(base: u16, count: u16) -> Result<Ports, ProbeError> {
        // SAFETY: claiming only records ownership in the kernel.
        let raw = unsafe { sys::kapi_port_claim(base, count) };
        status(raw).map_err(|s| {
            ProbeError::from_status(
                s,
                format_args!("cannot claim I/O ports {base:#x}+{count}: {s:?}"),
            )
        })?;
        Ok(Ports { base, count })
    }

    /// First port of the range.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// Number of ports in the range.
    pub fn count(&self) -> u16 {
        self.count
    }

    fn port(&self, offset: u16, width: u16) -> u16 {
        match offset.checked_add(width) {
            Some(end) if end <= self.count => self.base + offset,
            _ => panic!(
                "port offset {offset:#x} (width {width}) outside {:#x}+{}",
                self.base, self.count
            ),
        }
    }

    fn read(&self, offset: u16, width: u16) -> u32 {
        let port = self.port(offset, width);
        // SAFETY: the port lies in a range this module claimed; the kernel
        // validates it again.
        unsafe { sys::kapi_port_in(port, u32::from(width)) }
    }

    fn write(&self, offset: u16, width: u16, value: u32) {
        let port = self.port(offset, width);
        // SAFETY: as in `read`.
        unsafe { sys::kapi_port_out(port, u32::from(width), value) }
    }
}

impl PortIo for Ports {
    fn read8(&self, offset: u16) -> u8 {
        self.read(offset, 1) as u8
    }
    fn read16(&self, offset: u16) -> u16 {
        self.read(offset, 2) as u16
    }
    fn read32(&self, offset: u16) -> u32 {
        self.read(offset, 4)
    }
    fn write8(&self, offset: u16, value: u8) {
        self.write(offset, 1, value.into())
    }
    fn write16(&self, offset: u16, value: u16) {
        self.write(offset, 2, value.into())
    }
    fn write32(&self, offset: u16, value: u32) {
        self.write(offset, 4, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let p = Ports {
            base: 0x3f8,
            count: 8,
        };
        assert_eq!(p.port(7, 1), 0x3ff);
        assert_eq!(p.port(4, 4), 0x3fc);
        assert!(std::panic::catch_unwind(|| p.port(7, 2)).is_err());
        assert!(std::panic::catch_unwind(|| p.port(u16::MAX, 1)).is_err());
    }
}
