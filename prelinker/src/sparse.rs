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

/// The little-endian unsigned integer of `n` (2, 4 or 8) bytes at `at`.
fn le(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(n)?)?;
    Some(match n {
        2 => u16::from_le_bytes(s.try_into().ok()?) as u64,
        4 => u32::from_le_bytes(s.try_into().ok()?) as u64,
        8 => u64::from_le_bytes(s.try_into().ok()?),
        _ => s.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64),
    })
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

/// Reads closer together than this are merged into one.
pub(crate) const MERGE_GAP: u64 = 4096;
/// The first read of a module object: its header and, in objects as
/// compilers write them, the allocated sections that follow it.
const HEAD: u64 = 16 << 10;
/// The read of the section table takes up to this many bytes before it
/// along (where compilers put the string and symbol tables).
const TAIL: u64 = 16 << 10;

/// The ELF64 little-endian header fields of a module object the reader
/// uses: `(shoff, shnum, shstrndx)`, if the section table is one of 64-byte
/// entries inside a file of `len` bytes.
fn header(h: &[u8], len: u64) -> Option<(u64, u64, u64)> {
    if h.len() < 64 || h[..4] != *b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return None;
    }
    let field = |at, n| le(h, at, n).unwrap_or(0);
    let (shoff, shentsize, shnum, shstrndx) = (
        field(0x28, 8),
        field(0x3a, 2),
        field(0x3c, 2),
        field(0x3e, 2),
    );
    let table_end = shoff.checked_add(64 * shnum)?;
    (shentsize == 64 && shnum > 0 && shstrndx < shnum && table_end <= len)
        .then_some((shoff, shnum, shstrndx))
}

/// `(type, flags, offset, size, info, name)` of entry `i` of a section table.
fn sh(table: &[u8], i: u64) -> (u32, u64, u64, u64, u64, u64) {
    let s = &table[64 * i as usize..];
    let field = |at, n| le(s, at, n).unwrap_or(0);
    (
        field(4, 4) as u32,
        field(8, 8),
        field(0x18, 8),
        field(0x20, 8),
        field(0x2c, 4),
        field(0, 4),
    )
}

/// The contents the link uses of a module object with section table
/// `table` and section names `names`, in a file of `len` bytes: every
/// `SHF_ALLOC` section, the symbol and string tables, `.modinfo`, and the
/// `RELA` sections that apply to `SHF_ALLOC` sections (not debug
/// information and its relocations), sorted and merged where less than
/// [`MERGE_GAP`] apart; `None` if a section lies outside the file.
fn wanted(len: u64, table: &[u8], shstrndx: u64, names: &[u8]) -> Option<Vec<(u64, u64)>> {
    let shnum = (table.len() / 64) as u64;
    let modinfo = modtable::modinfo::MODINFO_SECTION.as_bytes();
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(16);
    for i in 1..shnum {
        let (typ, flags, off, size, info, name) = sh(table, i);
        if i == shstrndx || typ == elf::SHT_NOBITS || size == 0 {
            continue;
        }
        let wanted = flags & elf::SHF_ALLOC != 0
            || matches!(
                typ,
                elf::SHT_SYMTAB | elf::SHT_STRTAB | elf::SHT_SYMTAB_SHNDX
            )
            || (typ == elf::SHT_RELA && info < shnum && sh(table, info).1 & elf::SHF_ALLOC != 0)
            || names
                .get(name as usize..)
                .is_some_and(|n| n.starts_with(modinfo) && n.get(modinfo.len()) == Some(&0));
        if wanted {
            if off.checked_add(size).is_none_or(|e| e > len) {
                return None;
            }
            ranges.push((off, off + size));
        }
    }
    Some(merge(ranges))
}

/// Sorts `ranges` and merges those less than [`MERGE_GAP`] apart.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(MERGE_GAP) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `r` not inside any of the `covered` ranges.
fn uncovered(r: (u64, u64), covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut parts = vec![r];
    for &(cs, ce) in covered {
        parts = parts
            .into_iter()
            .flat_map(|(s, e)| {
                if ce <= s || cs >= e {
                    vec![(s, e)]
                } else {
                    [(s, cs.max(s)), (ce.min(e), e)]
                        .into_iter()
                        .filter(|p| p.0 < p.1)
                        .collect()
                }
            })
            .collect();
    }
    parts
}

/// Reads the parts of a module object that the link uses into `buf`, which
/// is as long as the file: the ELF header, the section table, the section
/// names and the contents of [`wanted`]. The first read takes the header
/// and the [`HEAD`] bytes after it, the second the section table and up to
/// [`TAIL`] bytes before it, and what is still missing is read in merged
/// pieces after that: three or four reads for objects as compilers write
/// them. Debug information and its relocations (half of a typical module
/// object) are mostly not read, and the rest of `buf` is left as it was.
/// Returns `false`, having read only part of the headers, if they cannot be
/// read this way (then the whole file must be read, and the parser says what
/// is wrong).
pub(crate) fn read_module_parts(f: &File, buf: &mut [u8]) -> std::io::Result<bool> {
    let len = buf.len() as u64;
    if len < 64 {
        return Ok(false);
    }
    let head = len.min(HEAD);
    f.read_exact_at(&mut buf[..head as usize], 0)?;
    let Some((shoff, shnum, shstrndx)) = header(&buf[..64], len) else {
        return Ok(false);
    };
    let table_end = shoff + 64 * shnum;
    let mut covered = vec![(0, head)];
    let read = |buf: &mut [u8], covered: &mut Vec<(u64, u64)>, r: (u64, u64)| {
        for (s, e) in uncovered(r, covered) {
            f.read_exact_at(&mut buf[s as usize..e as usize], s)?;
            covered.push((s, e));
        }
        Ok::<(), std::io::Error>(())
    };
    let from = shoff.min(table_end.saturating_sub(TAIL));
    read(buf, &mut covered, (from, table_end))?;
    let (t0, t1) = (shoff as usize, table_end as usize);
    let (_, _, names_off, names_size, _, _) = sh(&buf[t0..t1], shstrndx);
    if names_off.checked_add(names_size).is_none_or(|e| e > len) {
        return Ok(false);
    }
    read(buf, &mut covered, (names_off, names_off + names_size))?;
    let (n0, n1) = (names_off as usize, (names_off + names_size) as usize);
    let Some(ranges) = wanted(len, &buf[t0..t1], shstrndx, &buf[n0..n1]) else {
        return Ok(false);
    };
    for r in ranges {
        read(buf, &mut covered, r)?;
    }
    Ok(true)
}

/// The byte ranges of a module object of `len` bytes that the link needs
/// (the header, the section table, the section names and the contents of
/// [`wanted`]), merged where less than [`MERGE_GAP`] apart; `None` if they
/// cannot be found this way (the link then reads the file whole).
pub(crate) fn module_needed_ranges(f: &File, len: u64) -> Option<Vec<(u64, u64)>> {
    let h = read_at(f, len, 0, 64)?;
    let (shoff, shnum, shstrndx) = header(&h, len)?;
    let table = read_at(f, len, shoff, 64 * shnum)?;
    let (_, _, names_off, names_size, _, _) = sh(&table, shstrndx);
    let names = read_at(f, len, names_off, names_size)?;
    let mut all = wanted(len, &table, shstrndx, &names)?;
    all.extend([
        (0, 64),
        (shoff, shoff + 64 * shnum),
        (names_off, names_off + names_size),
    ]);
    Some(merge(all))
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
    use super::{complement, merge, uncovered};

    #[test]
    fn merging_and_subtracting_ranges() {
        assert_eq!(
            merge(vec![(5000, 6000), (0, 10), (20, 30), (10200, 10201)]),
            vec![(0, 30), (5000, 6000), (10200, 10201)]
        );
        let covered = [(0, 100), (200, 300)];
        assert_eq!(uncovered((50, 250), &covered), vec![(100, 200)]);
        assert_eq!(uncovered((300, 400), &covered), vec![(300, 400)]);
        assert_eq!(uncovered((10, 90), &covered), Vec::<(u64, u64)>::new());
        assert_eq!(uncovered((0, 400), &covered), vec![(100, 200), (300, 400)]);
    }

    #[test]
    fn complement_of_ranges() {
        assert_eq!(complement(10, &[(2, 4), (6, 10)]), vec![(0, 2), (4, 6)]);
        assert_eq!(complement(10, &[]), vec![(0, 10)]);
        assert_eq!(complement(10, &[(0, 10)]), Vec::<(u64, u64)>::new());
    }
}
