//! Relocation arithmetic shared by the prelinker (first placement) and the
//! kernel (redoing relocations after a module moved).
//!
//! Every ELF relocation type the prelinker accepts is lowered to one of the
//! [`RelocKind`]s here: `PLT32` becomes [`RelocKind::Pc32`], a relaxed
//! `GOTPCRELX` becomes [`RelocKind::Pc32`] on the rewritten instruction, and
//! a GOT entry is an [`RelocKind::Abs64`] in the module's own rodata.

use core::fmt;

/// How a relocated field is computed from the target value `V = S + A` and
/// the field's own address `P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RelocKind {
    /// 64-bit `V`.
    Abs64 = 1,
    /// 32-bit `V`, zero-extended: must fit in `u32`.
    Abs32 = 2,
    /// 32-bit `V`, sign-extended: must fit in `i32`.
    Abs32S = 3,
    /// 32-bit `V - P`: must fit in `i32`.
    Pc32 = 4,
    /// 64-bit `V - P`.
    Pc64 = 5,
}

impl RelocKind {
    /// Decodes a kind from its table encoding.
    pub fn from_u8(v: u8) -> Option<RelocKind> {
        Some(match v {
            1 => RelocKind::Abs64,
            2 => RelocKind::Abs32,
            3 => RelocKind::Abs32S,
            4 => RelocKind::Pc32,
            5 => RelocKind::Pc64,
            _ => return None,
        })
    }

    /// Width of the relocated field in bytes.
    pub fn width(self) -> usize {
        match self {
            RelocKind::Abs64 | RelocKind::Pc64 => 8,
            RelocKind::Abs32 | RelocKind::Abs32S | RelocKind::Pc32 => 4,
        }
    }

    /// Whether the field is relative to its own address.
    pub fn is_pc_relative(self) -> bool {
        matches!(self, RelocKind::Pc32 | RelocKind::Pc64)
    }

    /// Short name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            RelocKind::Abs64 => "abs64",
            RelocKind::Abs32 => "abs32",
            RelocKind::Abs32S => "abs32s",
            RelocKind::Pc32 => "pc32",
            RelocKind::Pc64 => "pc64",
        }
    }
}

/// Why a relocation could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocError {
    /// The computed value does not fit the field.
    Overflow {
        /// The relocation kind.
        kind: RelocKind,
        /// The value that did not fit (`V` or `V - P`, as an `i128` so that
        /// both signed and unsigned readings are exact).
        value: i128,
    },
    /// The field lies (partly) outside the buffer it should be written to.
    OutOfBounds {
        /// Offset of the field in the buffer.
        offset: usize,
        /// Width of the field.
        width: usize,
        /// Length of the buffer.
        len: usize,
    },
}

impl fmt::Display for RelocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RelocError::Overflow { kind, value } => {
                write!(
                    f,
                    "{} relocation overflow: value {value:#x} does not fit",
                    kind.name()
                )
            }
            RelocError::OutOfBounds { offset, width, len } => write!(
                f,
                "relocated field at offset {offset:#x} (width {width}) lies outside its {len}-byte section"
            ),
        }
    }
}

/// Computes the bytes of a relocated field: `target` is `S + A` (the final
/// address the field refers to), `place` is the field's own final address.
pub fn encode(kind: RelocKind, place: u64, target: u64) -> Result<[u8; 8], RelocError> {
    let mut out = [0u8; 8];
    match kind {
        RelocKind::Abs64 => out.copy_from_slice(&target.to_le_bytes()),
        RelocKind::Pc64 => out.copy_from_slice(&target.wrapping_sub(place).to_le_bytes()),
        RelocKind::Abs32 => {
            let v = u32::try_from(target).map_err(|_| RelocError::Overflow {
                kind,
                value: target as i128,
            })?;
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
        RelocKind::Abs32S => {
            let v = i32::try_from(target as i64).map_err(|_| RelocError::Overflow {
                kind,
                value: target as i64 as i128,
            })?;
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
        RelocKind::Pc32 => {
            let d = target.wrapping_sub(place) as i64;
            let v = i32::try_from(d).map_err(|_| RelocError::Overflow {
                kind,
                value: d as i128,
            })?;
            out[..4].copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Applies a relocation to `buf`, whose first byte lives at address `buf_addr`:
/// the field at `offset` gets `target` (that is `S + A`) encoded as `kind`.
pub fn apply(
    kind: RelocKind,
    buf: &mut [u8],
    buf_addr: u64,
    offset: usize,
    target: u64,
) -> Result<(), RelocError> {
    let width = kind.width();
    let len = buf.len();
    let field = offset
        .checked_add(width)
        .filter(|&end| end <= len)
        .map(|end| &mut buf[offset..end])
        .ok_or(RelocError::OutOfBounds { offset, width, len })?;
    let bytes = encode(kind, buf_addr.wrapping_add(offset as u64), target)?;
    field.copy_from_slice(&bytes[..width]);
    Ok(())
}

/// Reads back the field a relocation of `kind` wrote at `offset` of `buf`
/// (at `buf_addr`) and returns the target address it encodes.
pub fn decode(kind: RelocKind, buf: &[u8], buf_addr: u64, offset: usize) -> Option<u64> {
    let place = buf_addr.wrapping_add(offset as u64);
    let f = buf.get(offset..offset.checked_add(kind.width())?)?;
    Some(match kind {
        RelocKind::Abs64 => u64::from_le_bytes(f.try_into().ok()?),
        RelocKind::Pc64 => u64::from_le_bytes(f.try_into().ok()?).wrapping_add(place),
        RelocKind::Abs32 => u32::from_le_bytes(f.try_into().ok()?) as u64,
        RelocKind::Abs32S => i32::from_le_bytes(f.try_into().ok()?) as i64 as u64,
        RelocKind::Pc32 => place.wrapping_add(i32::from_le_bytes(f.try_into().ok()?) as i64 as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HI: u64 = 0xffff_ffff_8040_0000;

    #[test]
    fn every_kind_round_trips() {
        for kind in [
            RelocKind::Abs64,
            RelocKind::Abs32S,
            RelocKind::Pc32,
            RelocKind::Pc64,
        ] {
            let mut buf = [0u8; 16];
            apply(kind, &mut buf, HI, 4, HI + 0x1234).unwrap();
            assert_eq!(decode(kind, &buf, HI, 4), Some(HI + 0x1234), "{kind:?}");
        }
        let mut buf = [0u8; 8];
        apply(RelocKind::Abs32, &mut buf, HI, 0, 0xdead_beef).unwrap();
        assert_eq!(buf[..4], 0xdead_beefu32.to_le_bytes());
        assert_eq!(decode(RelocKind::Abs32, &buf, HI, 0), Some(0xdead_beef));
    }

    #[test]
    fn pc32_exact_values() {
        let mut buf = [0u8; 4];
        // Field at HI, target 0x10 bytes before it: -0x10.
        apply(RelocKind::Pc32, &mut buf, HI, 0, HI - 0x10).unwrap();
        assert_eq!(i32::from_le_bytes(buf), -0x10);
        // Largest forward and backward distances.
        const MID: u64 = 0x4000_0000_0000;
        apply(RelocKind::Pc32, &mut buf, MID, 0, MID + i32::MAX as u64).unwrap();
        assert_eq!(i32::from_le_bytes(buf), i32::MAX);
        apply(RelocKind::Pc32, &mut buf, MID, 0, MID - (1u64 << 31)).unwrap();
        assert_eq!(i32::from_le_bytes(buf), i32::MIN);
    }

    #[test]
    fn overflows_are_rejected() {
        let mut buf = [0u8; 8];
        const MID: u64 = 0x4000_0000_0000;
        let e = apply(RelocKind::Pc32, &mut buf, MID, 0, MID + (1u64 << 31)).unwrap_err();
        assert!(matches!(
            e,
            RelocError::Overflow {
                kind: RelocKind::Pc32,
                ..
            }
        ));
        assert!(apply(RelocKind::Pc32, &mut buf, MID, 0, MID - (1u64 << 31) - 1).is_err());
        // Higher-half addresses fit 32S (sign-extended) but not 32 (zero-extended).
        assert!(apply(RelocKind::Abs32S, &mut buf, 0, 0, HI).is_ok());
        assert!(apply(RelocKind::Abs32, &mut buf, 0, 0, HI).is_err());
        assert!(apply(RelocKind::Abs32S, &mut buf, 0, 0, 0x8000_0000).is_err());
        assert!(apply(RelocKind::Abs32, &mut buf, 0, 0, 0x8000_0000).is_ok());
        assert!(apply(RelocKind::Abs32, &mut buf, 0, 0, 0x1_0000_0000).is_err());
        // Nothing was written by a failed apply.
        let mut buf = [0xaau8; 8];
        assert!(apply(RelocKind::Pc32, &mut buf, HI, 0, 0x1000_0000_0000).is_err());
        assert_eq!(buf, [0xaa; 8]);
    }

    #[test]
    fn out_of_bounds_is_rejected() {
        let mut buf = [0u8; 6];
        assert_eq!(
            apply(RelocKind::Pc32, &mut buf, HI, 3, HI),
            Err(RelocError::OutOfBounds {
                offset: 3,
                width: 4,
                len: 6
            })
        );
        assert!(apply(RelocKind::Abs64, &mut buf, HI, usize::MAX, HI).is_err());
    }
}
