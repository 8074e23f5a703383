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
    if !elf::is_elf64_le(&h) {
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

/// Reads the parts of a module object that the link uses into `buf`, which
/// is as long as the file: the ELF header, the section table, and the
/// contents of the section-name table, every `SHF_ALLOC` section, the symbol
/// and string tables, `.modinfo`, and the `RELA` sections that apply to
/// `SHF_ALLOC` sections, with reads merged where less than a page apart.
/// Debug information and its relocations (half of a typical module object)
/// are not read, and the rest of `buf` is left as it was. Returns `false`,
/// having read only part of the headers, if they cannot be read this way
/// (then the whole file must be read, and the parser says what is wrong).
pub(crate) fn read_module_parts(f: &File, buf: &mut [u8]) -> std::io::Result<bool> {
    let len = buf.len() as u64;
    if len < 64 {
        return Ok(false);
    }
    f.read_exact_at(&mut buf[..64], 0)?;
    let h = &buf[..64];
    if !elf::is_elf64_le(h) {
        return Ok(false);
    }
    let field = |b: &[u8], at, n| le(b, at, n).unwrap_or(0);
    let (shoff, shentsize, shnum, shstrndx) = (
        field(h, 0x28, 8),
        field(h, 0x3a, 2),
        field(h, 0x3c, 2),
        field(h, 0x3e, 2),
    );
    let table_end = shoff.checked_add(64 * shnum);
    if shentsize != 64 || shnum == 0 || shstrndx >= shnum || table_end.is_none_or(|e| e > len) {
        return Ok(false);
    }
    let (t0, t1) = (shoff as usize, table_end.unwrap() as usize);
    f.read_exact_at(&mut buf[t0..t1], shoff)?;
    // (type, flags, offset, size, info, name) of section i.
    let sh = |buf: &[u8], i: u64| {
        let s = &buf[t0 + 64 * i as usize..];
        (
            field(s, 4, 4) as u32,
            field(s, 8, 8),
            field(s, 0x18, 8),
            field(s, 0x20, 8),
            field(s, 0x2c, 4),
            field(s, 0, 4),
        )
    };
    let in_file = |off: u64, size: u64| off.checked_add(size).is_some_and(|e| e <= len);
    let (_, _, names_off, names_size, _, _) = sh(buf, shstrndx);
    if !in_file(names_off, names_size) {
        return Ok(false);
    }
    let (n0, n1) = (names_off as usize, (names_off + names_size) as usize);
    f.read_exact_at(&mut buf[n0..n1], names_off)?;
    let modinfo = modtable::modinfo::MODINFO_SECTION.as_bytes();
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(16);
    for i in 1..shnum {
        let (typ, flags, off, size, info, name) = sh(buf, i);
        if i == shstrndx || typ == elf::SHT_NOBITS || size == 0 {
            continue;
        }
        let wanted = flags & elf::SHF_ALLOC != 0
            || matches!(
                typ,
                elf::SHT_SYMTAB | elf::SHT_STRTAB | elf::SHT_SYMTAB_SHNDX
            )
            || (typ == elf::SHT_RELA && info < shnum && sh(buf, info).1 & elf::SHF_ALLOC != 0)
            || buf[n0..n1]
                .get(name as usize..)
                .is_some_and(|n| n.starts_with(modinfo) && n.get(modinfo.len()) == Some(&0));
        if wanted {
            if !in_file(off, size) {
                return Ok(false);
            }
            ranges.push((off, off + size));
        }
    }
    ranges.sort_unstable();
    let mut at: Option<(u64, u64)> = None;
    for (s, e) in ranges.into_iter().chain([(u64::MAX, u64::MAX)]) {
        match at {
            Some((a, b)) if s > b.saturating_add(4096) || s == u64::MAX => {
                f.read_exact_at(&mut buf[a as usize..b as usize], a)?;
                at = Some((s, e));
            }
            Some((a, b)) => at = Some((a, b.max(e))),
            None => at = Some((s, e)),
        }
    }
    Ok(true)
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
