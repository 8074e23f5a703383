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

/// A relocated value for messages: `0x…`, or `-0x…` when it is negative
/// (rather than the 128-bit two's complement `{:#x}` prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub i128);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "-{:#x}", self.0.unsigned_abs())
        } else {
            write!(f, "{:#x}", self.0)
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
                    "{} relocation overflow: value {} does not fit",
                    kind.name(),
                    Hex(value)
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

/// The `width` bytes at `offset` of `buf`, or why not. Inlined: it sits in
/// the kernel's per-field relocation loop.
#[inline(always)]
fn field_mut(buf: &mut [u8], offset: usize, width: usize) -> Result<&mut [u8], RelocError> {
    let len = buf.len();
    offset
        .checked_add(width)
        .filter(|&end| end <= len)
        .map(|end| &mut buf[offset..end])
        .ok_or(RelocError::OutOfBounds { offset, width, len })
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
    let field = field_mut(buf, offset, width)?;
    let bytes = encode(kind, buf_addr.wrapping_add(offset as u64), target)?;
    // A copy of a constant width, which compiles to one store (a copy of
    // `width` bytes would be a call to memcpy per field).
    if width == 4 {
        field.copy_from_slice(&bytes[..4]);
    } else {
        field.copy_from_slice(&bytes[..8]);
    }
    Ok(())
}

/// Moves a relocated field by `delta`: the field at `offset` of `buf` was
/// computed for one target and place address, and the target moved by
/// `Δtarget` and the place by `Δplace`; `delta` is `Δtarget` for an absolute
/// kind and `Δtarget − Δplace` for a PC-relative one. The new value must
/// still fit the field; on overflow nothing is written.
pub fn adjust(
    kind: RelocKind,
    buf: &mut [u8],
    offset: usize,
    delta: i64,
) -> Result<(), RelocError> {
    let offset = u32::try_from(offset).map_err(|_| RelocError::OutOfBounds {
        offset,
        width: kind.width(),
        len: buf.len(),
    })?;
    adjust_all(kind, buf, core::iter::once(offset), delta)
        .map(|_| ())
        .map_err(|(_, e)| e)
}

/// [`adjust`] for many fields of one kind at once (the kind is dispatched
/// once, not per field). Returns the number of fields adjusted, or the
/// offset of the first field that failed and why; fields before it were
/// adjusted, it and the ones after were not.
pub fn adjust_all(
    kind: RelocKind,
    buf: &mut [u8],
    offsets: impl Iterator<Item = u32>,
    delta: i64,
) -> Result<u32, (u32, RelocError)> {
    fn run<const N: usize>(
        buf: &mut [u8],
        offsets: impl Iterator<Item = u32>,
        step: impl Fn([u8; N]) -> Option<[u8; N]>,
        overflow: impl Fn([u8; N]) -> RelocError,
    ) -> Result<u32, (u32, RelocError)> {
        let mut n = 0;
        for off in offsets {
            let field = field_mut(buf, off as usize, N).map_err(|e| (off, e))?;
            let old: [u8; N] = field.try_into().unwrap();
            let new = step(old).ok_or_else(|| (off, overflow(old)))?;
            field.copy_from_slice(&new);
            n += 1;
        }
        Ok(n)
    }
    let wide = |kind| {
        move |old: [u8; 8]| RelocError::Overflow {
            kind,
            value: i64::from_le_bytes(old) as i128 + delta as i128,
        }
    };
    let narrow = |kind| {
        move |old: [u8; 4]| RelocError::Overflow {
            kind,
            value: i32::from_le_bytes(old) as i128 + delta as i128,
        }
    };
    match kind {
        RelocKind::Abs64 | RelocKind::Pc64 => run(
            buf,
            offsets,
            |old: [u8; 8]| {
                Some(
                    u64::from_le_bytes(old)
                        .wrapping_add(delta as u64)
                        .to_le_bytes(),
                )
            },
            wide(kind),
        ),
        RelocKind::Abs32 => run(
            buf,
            offsets,
            |old: [u8; 4]| {
                let v = (u32::from_le_bytes(old) as i64).checked_add(delta)?;
                Some(u32::try_from(v).ok()?.to_le_bytes())
            },
            move |old: [u8; 4]| RelocError::Overflow {
                kind,
                value: u32::from_le_bytes(old) as i128 + delta as i128,
            },
        ),
        RelocKind::Abs32S | RelocKind::Pc32 => run(
            buf,
            offsets,
            |old: [u8; 4]| {
                let v = (i32::from_le_bytes(old) as i64).checked_add(delta)?;
                Some(i32::try_from(v).ok()?.to_le_bytes())
            },
            narrow(kind),
        ),
    }
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
    fn adjust_equals_apply_at_the_new_addresses() {
        // A field applied for (place P, target S), then both moved, must
        // equal the field applied afresh at the new addresses.
        let cases: [(RelocKind, u64, u64, i64, i64); 6] = [
            (RelocKind::Pc32, HI + 0x100, HI + 0x9000, -0x40, -0x2000),
            (RelocKind::Pc32, HI + 0x100, HI + 0x9000, -0x40, 0),
            (RelocKind::Abs64, HI, HI + 0x10, 0, -0x7fc0),
            (RelocKind::Abs32S, HI, HI + 0x10, 0, -0x1000),
            (RelocKind::Pc64, HI + 8, HI + 0x4000, -0x80, -0x40),
            (RelocKind::Abs32, 0, 0x1000, 0, 0x20),
        ];
        for (kind, place, target, dp, dt) in cases {
            let mut a = [0u8; 16];
            apply(kind, &mut a, place, 0, target).unwrap();
            let delta = if kind.is_pc_relative() { dt - dp } else { dt };
            adjust(kind, &mut a, 0, delta).unwrap();
            let mut b = [0u8; 16];
            let (np, nt) = (
                place.wrapping_add(dp as u64),
                target.wrapping_add(dt as u64),
            );
            apply(kind, &mut b, np, 0, nt).unwrap();
            assert_eq!(a, b, "{kind:?}");
        }
    }

    #[test]
    fn adjust_all_matches_adjust() {
        for kind in [
            RelocKind::Abs64,
            RelocKind::Abs32,
            RelocKind::Abs32S,
            RelocKind::Pc32,
            RelocKind::Pc64,
        ] {
            let mut a = [0u8; 64];
            for (i, b) in a.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37) & 0x3f;
            }
            let mut b = a;
            let offs = [0u32, 8, 24, 40];
            for &o in &offs {
                adjust(kind, &mut a, o as usize, 0x123).unwrap();
            }
            assert_eq!(adjust_all(kind, &mut b, offs.into_iter(), 0x123), Ok(4));
            assert_eq!(a, b, "{kind:?}");
        }
        // The first bad field stops it and is reported.
        let mut b = [0u8; 8];
        let r = adjust_all(RelocKind::Pc32, &mut b, [0u32, 6].into_iter(), 1);
        assert!(matches!(r, Err((6, RelocError::OutOfBounds { .. }))));
        assert_eq!(b[0], 1, "the field before it was adjusted");
    }

    #[test]
    fn adjust_rejects_overflow_and_bounds() {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(
            adjust(RelocKind::Pc32, &mut b, 0, 1),
            Err(RelocError::Overflow { .. })
        ));
        assert_eq!(
            i32::from_le_bytes(b[..4].try_into().unwrap()),
            i32::MAX,
            "unchanged"
        );
        assert!(adjust(RelocKind::Abs32, &mut [0u8; 4], 0, -1).is_err());
        assert!(adjust(RelocKind::Abs64, &mut [0u8; 6], 0, 1).is_err());
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
