//! The Bochs DISPI registers over any [`PortIo`] claimed at [`INDEX_PORT`].

use module_api::ProbeError;
use module_api::ports::PortIo;

/// First port of the DISPI interface (the index register).
pub const INDEX_PORT: u16 = 0x1ce;
/// Offset of the data register from [`INDEX_PORT`].
const DATA: u16 = 1;
/// Register: interface id/version.
const REG_ID: u16 = 0x0;
/// Register: video memory in 64 KiB units.
const REG_VIDEO_MEMORY_64K: u16 = 0xa;
/// Oldest and newest known ids.
const ID_MIN: u16 = 0xb0c0;
const ID_MAX: u16 = 0xb0c5;

/// What the interface reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispi {
    /// Version id (0xB0C0..=0xB0C5).
    pub version: u16,
    /// Video memory in KiB.
    pub video_kib: u32,
}

fn read(io: &impl PortIo, reg: u16) -> u16 {
    io.write16(0, reg);
    io.read16(DATA)
}

/// Reads the id and video memory size; fails on an unknown id.
pub fn identify(io: &impl PortIo) -> Result<Dispi, ProbeError> {
    let version = read(io, REG_ID);
    if !(ID_MIN..=ID_MAX).contains(&version) {
        return Err(ProbeError::no_device(format_args!(
            "DISPI id register reads {version:#06x}, expected {ID_MIN:#06x}..={ID_MAX:#06x}"
        )));
    }
    let video_kib = u32::from(read(io, REG_VIDEO_MEMORY_64K)) * 64;
    Ok(Dispi { version, video_kib })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Fake {
        index: Cell<u16>,
        id: u16,
    }

    impl PortIo for Fake {
        fn write16(&self, off: u16, v: u16) {
            assert_eq!(off, 0);
            self.index.set(v);
        }
        fn read16(&self, off: u16) -> u16 {
            assert_eq!(off, DATA);
            match self.index.get() {
                REG_ID => self.id,
                REG_VIDEO_MEMORY_64K => 256,
                _ => 0,
            }
        }
        fn read8(&self, _: u16) -> u8 {
            unreachable!()
        }
        fn read32(&self, _: u16) -> u32 {
            unreachable!()
        }
        fn write8(&self, _: u16, _: u8) {
            unreachable!()
        }
        fn write32(&self, _: u16, _: u32) {
            unreachable!()
        }
    }

    #[test]
    fn identifies() {
        let f = Fake {
            index: Cell::new(0),
            id: 0xb0c5,
        };
        assert_eq!(
            identify(&f).unwrap(),
            Dispi {
                version: 0xb0c5,
                video_kib: 16384
            }
        );
        let f = Fake {
            index: Cell::new(0),
            id: 0xffff,
        };
        assert_eq!(
            identify(&f).unwrap_err().message(),
            "DISPI id register reads 0xffff, expected 0xb0c0..=0xb0c5"
        );
    }
}
