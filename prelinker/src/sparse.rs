//! Reading an ELF file without the parts the link replaces: a kernel's
//! module regions and table area are read as zeros instead (the buffer is
//! allocated zeroed, a fresh mapping at that size, and only the other byte
//! ranges are read into it), so the regions cost neither a copy nor a page
//! fault. The parser sees a file of the right length either way.

use crate::elf;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// What the section table says about one section.
pub(crate) struct Shdr {
    pub name: u32,
    pub typ: u32,
    pub off: u64,
    pub size: u64,
}

fn le(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at + n)?;
    Some(s.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64))
}

/// Reads `n` bytes at `off`, if they lie inside a file of `len` bytes.
pub(crate) fn read_at(f: &File, len: u64, off: u64, n: u64) -> Option<Vec<u8>> {
    if off.checked_add(n)? > len || n > 1 << 26 {
        return None;
    }
    let mut b = vec![0u8; n as usize];
    f.read_exact_at(&mut b, off).ok()?;
    Some(b)
}

/// The section headers of an ELF64 little-endian file and the index of the
/// section-name table; `None` if they cannot be read this way (the full
/// parse then says what is wrong).
pub(crate) fn headers(f: &File, len: u64) -> Option<(Vec<Shdr>, usize)> {
    let h = read_at(f, len, 0, 64)?;
    if h[..4] != *b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return None;
    }
    let (shoff, shentsize, shnum, shstrndx) = (
        le(&h, 0x28, 8)?,
        le(&h, 0x3a, 2)?,
        le(&h, 0x3c, 2)?,
        le(&h, 0x3e, 2)?,
    );
    if shentsize < 64 || shnum == 0 || shstrndx >= shnum {
        return None;
    }
    let sht = read_at(f, len, shoff, shentsize * shnum)?;
    let mut out = Vec::with_capacity(shnum as usize);
    for i in 0..shnum as usize {
        let s = &sht[i * shentsize as usize..];
        let sh = Shdr {
            name: le(s, 0, 4)? as u32,
            typ: le(s, 4, 4)? as u32,
            off: le(s, 0x18, 8)?,
            size: le(s, 0x20, 8)?,
        };
        if sh.typ != elf::SHT_NOBITS && sh.off.checked_add(sh.size)? > len {
            return None;
        }
        out.push(sh);
    }
    Some((out, shstrndx as usize))
}

/// A zeroed buffer of `len` bytes with the sorted, disjoint `ranges` of `f`
/// read into it.
pub(crate) fn read_ranges(f: &File, len: u64, ranges: &[(u64, u64)]) -> std::io::Result<Vec<u8>> {
    let mut data = vec![0u8; len as usize];
    for &(s, e) in ranges {
        f.read_exact_at(&mut data[s as usize..e as usize], s)?;
    }
    Ok(data)
}

/// The complement of sorted, disjoint `skip` ranges inside `[0, len)`.
pub(crate) fn complement(len: u64, skip: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    for &(s, e) in skip {
        if s > at {
            out.push((at, s));
        }
        at = at.max(e);
    }
    if at < len {
        out.push((at, len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::complement;

    #[test]
    fn complement_of_ranges() {
        assert_eq!(complement(10, &[(2, 4), (6, 10)]), vec![(0, 2), (4, 6)]);
        assert_eq!(complement(10, &[]), vec![(0, 10)]);
        assert_eq!(complement(10, &[(0, 10)]), Vec::<(u64, u64)>::new());
    }
}
