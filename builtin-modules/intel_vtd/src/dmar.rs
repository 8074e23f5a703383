//! DMAR table parsing and the register check.

use module_api::ProbeError;
use module_api::acpi::{Table, le16, le64};
use module_api::mmio::MmioIo;

/// Bytes of registers mapped.
pub const REGS_LEN: u64 = 0x1000;
const VERSION: u64 = 0x00;
const CAPABILITY: u64 = 0x08;
const EXT_CAPABILITY: u64 = 0x10;
/// Remapping structures start after the header, host address width, flags
/// and 10 reserved bytes.
const FIRST_STRUCT: usize = 48;
const TYPE_DRHD: u16 = 0;

/// A DMA remapping hardware unit definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drhd {
    /// Flags (bit 0: includes all PCI devices of the segment).
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    /// Physical register base.
    pub base: u64,
}

/// The first DRHD structure and how many there are.
pub fn first_drhd(t: &Table<'_>) -> Result<(Drhd, usize), ProbeError> {
    let b = t.bytes();
    let mut first = None;
    let mut count = 0;
    let mut at = FIRST_STRUCT;
    while at + 4 <= b.len() {
        let kind = le16(b, at);
        let len = usize::from(le16(b, at + 2));
        if len < 4 || at + len > b.len() {
            return Err(ProbeError::io(format_args!(
                "DMAR structure at offset {at} has bad length {len}"
            )));
        }
        if kind == TYPE_DRHD {
            if len < 16 {
                return Err(ProbeError::io(format_args!(
                    "DRHD structure at offset {at} is only {len} bytes"
                )));
            }
            count += 1;
            first.get_or_insert(Drhd {
                flags: b[at + 4],
                segment: le16(b, at + 6),
                base: le64(b, at + 8),
            });
        }
        at += len;
    }
    match first {
        Some(d) => Ok((d, count)),
        None => Err(ProbeError::no_device(format_args!(
            "DMAR table has no DRHD unit"
        ))),
    }
}

/// What the unit's registers said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Architecture major version.
    pub major: u8,
    /// Architecture minor version.
    pub minor: u8,
    /// Capability register.
    pub cap: u64,
    /// Extended capability register.
    pub ecap: u64,
}

/// Reads the version and capability registers. The version must be 1.0 or
/// later and the unit must support some page-table depth (SAGAW).
pub fn read_unit(regs: &impl MmioIo, base: u64) -> Result<Unit, ProbeError> {
    let ver = regs.read32(VERSION);
    let major = ((ver >> 4) & 0xf) as u8;
    if ver == u32::MAX || major == 0 {
        return Err(ProbeError::io(format_args!(
            "DRHD at {base:#x}: version register reads {ver:#010x}"
        )));
    }
    let cap = regs.read64(CAPABILITY);
    let sagaw = (cap >> 8) & 0x1f;
    if cap == u64::MAX || sagaw == 0 {
        return Err(ProbeError::io(format_args!(
            "DRHD at {base:#x}: capability register {cap:#018x} has no page-table depth"
        )));
    }
    Ok(Unit {
        major,
        minor: (ver & 0xf) as u8,
        cap,
        ecap: regs.read64(EXT_CAPABILITY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use module_api::acpi::build_table;
    use std::vec::Vec;

    fn drhd(flags: u8, segment: u16, base: u64) -> Vec<u8> {
        let mut b = std::vec![0u8; 16];
        b[2..4].copy_from_slice(&16u16.to_le_bytes());
        b[4] = flags;
        b[6..8].copy_from_slice(&segment.to_le_bytes());
        b[8..16].copy_from_slice(&base.to_le_bytes());
        b
    }

    #[test]
    fn finds_drhd_after_other_structures() {
        let mut body = std::vec![0u8; 12];
        body[0] = 38; // host address width - 1
        let mut rmrr = std::vec![0u8; 24];
        rmrr[0] = 1;
        rmrr[2] = 24;
        body.extend(rmrr);
        body.extend(drhd(1, 0, 0xfed9_0000));
        body.extend(drhd(0, 0, 0xfed9_1000));
        let mut buf = [0u8; 256];
        let n = build_table(b"DMAR", 1, &body, &mut buf);
        let t = Table::parse(b"DMAR", &buf[..n]).unwrap();
        let (d, count) = first_drhd(&t).unwrap();
        assert_eq!(
            d,
            Drhd {
                flags: 1,
                segment: 0,
                base: 0xfed9_0000
            }
        );
        assert_eq!(count, 2);
    }

    #[test]
    fn no_drhd() {
        let mut buf = [0u8; 64];
        let n = build_table(b"DMAR", 1, &[0u8; 12], &mut buf);
        let t = Table::parse(b"DMAR", &buf[..n]).unwrap();
        assert_eq!(
            first_drhd(&t).unwrap_err().message(),
            "DMAR table has no DRHD unit"
        );
    }

    struct Regs {
        ver: u32,
        cap: u64,
    }

    impl MmioIo for Regs {
        fn read32(&self, off: u64) -> u32 {
            assert_eq!(off, VERSION);
            self.ver
        }
        fn read64(&self, off: u64) -> u64 {
            match off {
                CAPABILITY => self.cap,
                EXT_CAPABILITY => 0xf00f4a,
                _ => unreachable!(),
            }
        }
        fn read8(&self, _: u64) -> u8 {
            unreachable!()
        }
        fn read16(&self, _: u64) -> u16 {
            unreachable!()
        }
        fn write8(&self, _: u64, _: u8) {
            unreachable!()
        }
        fn write16(&self, _: u64, _: u16) {
            unreachable!()
        }
        fn write32(&self, _: u64, _: u32) {
            unreachable!()
        }
        fn write64(&self, _: u64, _: u64) {
            unreachable!()
        }
    }

    #[test]
    fn checks_version_and_capability() {
        // QEMU's intel-iommu: version 1.0.
        let qemu = Regs {
            ver: 0x10,
            cap: 0x00d2_0080_2226_0206,
        };
        let u = read_unit(&qemu, 0xfed9_0000).unwrap();
        assert_eq!((u.major, u.minor, u.ecap), (1, 0, 0xf00f4a));
        let absent = Regs {
            ver: u32::MAX,
            cap: u64::MAX,
        };
        assert_eq!(
            read_unit(&absent, 0xfed9_0000).unwrap_err().message(),
            "DRHD at 0xfed90000: version register reads 0xffffffff"
        );
        let no_sagaw = Regs { ver: 0x10, cap: 0 };
        assert!(read_unit(&no_sagaw, 0xfed9_0000).is_err());
    }
}
