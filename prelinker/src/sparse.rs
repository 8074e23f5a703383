//! Reading an ELF file without the parts the link does not use: a kernel's
//! module regions and table area are read as zeros instead (the buffer is
//! allocated zeroed, a fresh mapping at that size, and only the other byte
//! ranges are read into it), so the regions cost neither a copy nor a page
//! fault, and the parser sees a file of the right length; a module object
//! is read as a compact copy of just the sections the link uses, most of
//! it from two reads ahead (see [`ReadAhead`]).

use crate::elf;
use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes of a module object read first: compilers put the allocated
/// sections right after the ELF header, and these cover them in most
/// module objects.
const HEAD_AHEAD: u64 = 24 << 10;
/// At most this many bytes before the section table are read with it:
/// compilers put the string table (mostly section names, about half the
/// table's size) just before it.
const TAIL_AHEAD: u64 = 64 << 10;

/// Two windows of a module object read ahead, each in one read: its first
/// bytes, and its section table with as many bytes before it as the table
/// has (so the string table in front of it, in the usual layout). Reading
/// a part the link uses then copies what the windows hold and reads only
/// the rest: two or three reads per object instead of one per part. The
/// buffers are reused from one object to the next.
#[derive(Default)]
pub(crate) struct ReadAhead {
    /// Bytes `0..head_len` of the file, in the first `head_len` bytes.
    head: Vec<u8>,
    head_len: usize,
    /// Bytes `tail_at..tail_at + tail_len` of the file, in the first
    /// `tail_len` bytes.
    tail: Vec<u8>,
    tail_len: usize,
    tail_at: u64,
}

/// The first `n` bytes of `buf`, grown (with zeros) if it is shorter but
/// never shrunk: a buffer reused for reads of varying size is zeroed only
/// where it grows, not at every read (all of its bytes are read over).
fn reuse(buf: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    &mut buf[..n]
}

impl ReadAhead {
    /// Reads the windows of `f` (of `len` bytes). The second is read only
    /// if the first bytes are an ELF64 header whose section table lies in
    /// the file, past the first window.
    pub(crate) fn fill(&mut self, f: &File, len: u64) -> std::io::Result<()> {
        // Every byte is read over: reused buffers need no zeroing.
        self.head_len = len.min(HEAD_AHEAD) as usize;
        f.read_exact_at(reuse(&mut self.head, self.head_len), 0)?;
        self.tail_len = 0;
        self.tail_at = 0;
        let head_end = self.head_len as u64;
        let Some((shoff, table)) = table_range(self.head()) else {
            return Ok(());
        };
        match shoff.checked_add(table) {
            Some(end) if end <= len && end > head_end => {
                let start = shoff.saturating_sub(table.min(TAIL_AHEAD)).max(head_end);
                self.tail_len = (end - start) as usize;
                f.read_exact_at(reuse(&mut self.tail, self.tail_len), start)?;
                self.tail_at = start;
            }
            _ => {}
        }
        Ok(())
    }

    /// The file's first bytes (all of them, if it is shorter than the
    /// window).
    pub(crate) fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }

    /// The bytes read ahead with the section table.
    fn tail(&self) -> &[u8] {
        &self.tail[..self.tail_len]
    }

    /// The `n` bytes at `off`, if one window holds them all.
    fn window(&self, off: u64, n: u64) -> Option<&[u8]> {
        let end = off.checked_add(n)?;
        if end <= self.head_len as u64 {
            return Some(&self.head[off as usize..end as usize]);
        }
        let t = off.checked_sub(self.tail_at)?;
        self.tail().get(t as usize..(t + n) as usize)
    }

    /// Fills `dst` with the bytes of `f` at `off`: copied from the windows
    /// where they hold them, read from the file in between.
    fn read_at(&self, f: &File, dst: &mut [u8], off: u64) -> std::io::Result<()> {
        let (head_end, tail_end) = (self.head_len as u64, self.tail_at + self.tail_len as u64);
        let end = off + dst.len() as u64;
        let mut at = off;
        while at < end {
            let d = (at - off) as usize;
            let (upto, from_window) = if at < head_end {
                (head_end.min(end), true)
            } else if self.tail_len > 0 && at >= self.tail_at && at < tail_end {
                (tail_end.min(end), true)
            } else if self.tail_len > 0 && at < self.tail_at {
                (self.tail_at.min(end), false)
            } else {
                (end, false)
            };
            let n = (upto - at) as usize;
            if from_window {
                dst[d..d + n].copy_from_slice(self.window(at, n as u64).expect("inside a window"));
            } else {
                f.read_exact_at(&mut dst[d..d + n], at)?;
            }
            at = upto;
        }
        Ok(())
    }

    /// The `n` bytes of `f` at `off`: borrowed from a window that holds
    /// them all, read otherwise.
    fn bytes(&self, f: &File, off: u64, n: u64) -> std::io::Result<Cow<'_, [u8]>> {
        if let Some(w) = self.window(off, n) {
            return Ok(Cow::Borrowed(w));
        }
        let mut v = vec![0u8; n as usize];
        self.read_at(f, &mut v, off)?;
        Ok(Cow::Owned(v))
    }
}

/// Where the section table of the ELF64 file starting with `head` is, and
/// its size, as its header gives them (not yet checked against the file).
fn table_range(head: &[u8]) -> Option<(u64, u64)> {
    let h = head.get(..EHDR_SIZE)?;
    if !elf::is_elf64_le(h) {
        return None;
    }
    let shoff = le(h, E_SHOFF, 8)?;
    let shnum = le(h, 0x3c, 2)?;
    Some((shoff, SHDR_SIZE as u64 * shnum))
}

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

/// Offset of `e_phoff` in the ELF64 header.
const E_PHOFF: usize = 0x20;
/// Offset of `e_shoff` in the ELF64 header.
const E_SHOFF: usize = 0x28;
/// Offset of `e_phnum` in the ELF64 header.
const E_PHNUM: usize = 0x38;
/// Size of the ELF64 header and of one ELF64 section header.
const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
/// Offsets of `sh_offset` and `sh_size` in an ELF64 section header.
const SH_OFFSET: usize = 0x18;
const SH_SIZE: usize = 0x20;

/// Reads the parts of the module object `f` (of `len` bytes) that the link
/// uses into `buf`, as a compact ELF file of their size rather than the
/// file's: the ELF header, the section table, and the contents of every
/// `SHF_ALLOC` section, the symbol and string tables (the section-name
/// table among them), `.modinfo`, and the `RELA` sections that apply to
/// `SHF_ALLOC` sections, read with reads merged where less than a page
/// apart and laid out one after the other. The section table is rewritten
/// to match: the header's `e_shoff` points at the copy after the header,
/// each section read points at its new place, and every other section
/// (debug information and its relocations, half of a typical module object)
/// keeps its name, type, flags and links but gets an empty range; program
/// headers are dropped. Every byte of `buf` is written, so a buffer reused
/// from an earlier file keeps none of its bytes, and its length is what was
/// read. Returns `false`, having read only the headers, if they cannot be
/// read this way (the caller then reads the file whole, and the parser says
/// what is wrong).
/// `(type, flags, offset, size, info, name)` of entry `i` of a section
/// table.
fn sh(sht: &[u8], i: u64) -> (u32, u64, u64, u64, u64, u64) {
    let s = &sht[SHDR_SIZE * i as usize..][..SHDR_SIZE];
    let w = |at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    let x = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    (
        w(4),
        x(8),
        x(SH_OFFSET),
        x(SH_SIZE),
        w(0x2c) as u64,
        w(0) as u64,
    )
}

/// What [`read_module_parts`] reads: the ELF header, the section table,
/// and the merged ranges `(start, end, 0)` of the sections the link uses;
/// `None` if the headers cannot be read that way.
struct Parts<'a> {
    h: [u8; EHDR_SIZE],
    sht: Cow<'a, [u8]>,
    shnum: u64,
    shoff: u64,
    shstrndx: u64,
    merged: Vec<(u64, u64, u64)>,
}

/// Whether the link uses section `i` of the section table `sht` (of
/// `shnum` entries, the names in section `shstrndx`): every `SHF_ALLOC`
/// section, the symbol and string tables (the section-name table among
/// them), the `RELA` sections that apply to `SHF_ALLOC` sections, and
/// `.modinfo`. Without `names`, a section is wanted by its header alone
/// (which misses only a `.modinfo` without `SHF_ALLOC`).
fn wanted(sht: &[u8], shnum: u64, shstrndx: u64, i: u64, names: Option<&[u8]>) -> bool {
    let (typ, flags, _, size, info, name) = sh(sht, i);
    if typ == elf::SHT_NOBITS || size == 0 {
        return false;
    }
    i == shstrndx
        || flags & elf::SHF_ALLOC != 0
        || matches!(
            typ,
            elf::SHT_SYMTAB | elf::SHT_STRTAB | elf::SHT_SYMTAB_SHNDX
        )
        || (typ == elf::SHT_RELA && info < shnum && sh(sht, info).1 & elf::SHF_ALLOC != 0)
        || names.is_some_and(|names| named_modinfo(name, names))
}

/// Whether the name at `name` in the section-name table `names` is
/// `.modinfo`.
fn named_modinfo(name: u64, names: &[u8]) -> bool {
    let modinfo = modabi::modinfo::MODINFO_SECTION.as_bytes();
    names
        .get(name as usize..)
        .is_some_and(|n| n.starts_with(modinfo) && n.get(modinfo.len()) == Some(&0))
}

/// The headers of the module object `f` (of `len` bytes, read ahead in
/// `ra`), and the sections the link uses by [`wanted`] (with `names`, the
/// section-name table, if known), merged where less than a page apart;
/// `None` if the headers cannot be read this way.
fn parts<'a>(
    f: &File,
    len: u64,
    ra: &'a ReadAhead,
    names: Option<&[u8]>,
) -> std::io::Result<Option<Parts<'a>>> {
    let Some(Ok(h)) = ra.head().get(..EHDR_SIZE).map(<[u8; EHDR_SIZE]>::try_from) else {
        return Ok(None);
    };
    if len < EHDR_SIZE as u64 || !elf::is_elf64_le(&h) {
        return Ok(None);
    }
    let field = |b: &[u8], at, n| le(b, at, n).unwrap_or(0);
    let (shoff, shentsize, shnum, shstrndx) = (
        field(&h, E_SHOFF, 8),
        field(&h, 0x3a, 2),
        field(&h, 0x3c, 2),
        field(&h, 0x3e, 2),
    );
    let table_end = shoff.checked_add(SHDR_SIZE as u64 * shnum);
    if shentsize != SHDR_SIZE as u64
        || shnum == 0
        || shstrndx >= shnum
        || table_end.is_none_or(|e| e > len)
    {
        return Ok(None);
    }
    // At most 65535 headers: 4 MiB.
    let sht = ra.bytes(f, shoff, SHDR_SIZE as u64 * shnum)?;
    let in_file = |off: u64, size: u64| off.checked_add(size).is_some_and(|e| e <= len);
    let (_, _, names_off, names_size, _, _) = sh(&sht, shstrndx);
    if !in_file(names_off, names_size) {
        return Ok(None);
    }
    // The allocated sections first, then the others: compilers lay out
    // each kind in section order, so the list is a few ascending runs,
    // which a stable sort merges in about linear time (sections are
    // interleaved with their relocations in the section table, so the list
    // in table order is not).
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(shnum as usize);
    for alloc in [true, false] {
        for i in 1..shnum {
            let (_, flags, off, size, _, _) = sh(&sht, i);
            if (flags & elf::SHF_ALLOC != 0) == alloc && wanted(&sht, shnum, shstrndx, i, names) {
                if !in_file(off, size) {
                    return Ok(None);
                }
                ranges.push((off, off + size));
            }
        }
    }
    ranges.sort();
    // Merged ranges: (start, end) in the file and where they go in `buf`.
    let mut merged: Vec<(u64, u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(4096) => last.1 = last.1.max(e),
            _ => merged.push((s, e, 0)),
        }
    }
    Ok(Some(Parts {
        h,
        sht,
        shnum,
        shoff,
        shstrndx,
        merged,
    }))
}

/// The parts of `f` (of `len` bytes, read ahead in `ra`) that the link
/// uses, with the section-name table read to find every `.modinfo`.
fn parts_by_name<'a>(f: &File, len: u64, ra: &'a ReadAhead) -> std::io::Result<Option<Parts<'a>>> {
    let Some(p) = parts(f, len, ra, None)? else {
        return Ok(None);
    };
    let (_, _, off, size, _, _) = sh(&p.sht, p.shstrndx);
    let names = ra.bytes(f, off, size)?;
    parts(f, len, ra, Some(&names))
}

/// The byte ranges of the module object `f` (of `len` bytes) that
/// [`read_module_parts`] reads (header, section table, the sections the link
/// uses), sorted and merged: the I/O a link cannot avoid, for measuring it.
/// `None` if the headers cannot be read that way (the link reads the whole
/// file then).
pub(crate) fn module_needed_ranges(f: &File, len: u64) -> Option<Vec<(u64, u64)>> {
    let mut ra = ReadAhead::default();
    ra.fill(f, len).ok()?;
    let p = parts_by_name(f, len, &ra).ok()??;
    let mut v: Vec<(u64, u64)> = p.merged.iter().map(|&(s, e, _)| (s, e)).collect();
    v.push((0, EHDR_SIZE as u64));
    v.push((p.shoff, p.shoff + p.sht.len() as u64));
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    Some(out)
}

/// Reads the merged ranges of `p` one after the other into `buf`, after
/// room for the header and the section table, and returns where the
/// section-name table is in `buf`.
fn read_merged(
    f: &File,
    ra: &ReadAhead,
    p: &mut Parts<'_>,
    buf: &mut Vec<u8>,
) -> std::io::Result<(usize, usize)> {
    let mut at = (EHDR_SIZE + p.sht.len()) as u64;
    for m in &mut p.merged {
        m.2 = at;
        at += m.1 - m.0;
    }
    // Every byte is written below: a reused buffer needs no zeroing.
    buf.resize(at as usize, 0);
    for &(s, e, to) in &p.merged {
        ra.read_at(f, &mut buf[to as usize..(to + e - s) as usize], s)?;
    }
    let (_, _, off, size, _, _) = sh(&p.sht, p.shstrndx);
    Ok(new_place(&p.merged, off, size).map_or((0, 0), |(o, n)| (o as usize, n as usize)))
}

/// Where the section at `off` of `size` bytes lies in the compact copy of
/// `merged`, if it was read (a non-empty section inside one merged range).
fn new_place(merged: &[(u64, u64, u64)], off: u64, size: u64) -> Option<(u64, u64)> {
    let k = merged.partition_point(|m| m.0 <= off);
    match k.checked_sub(1).map(|k| merged[k]) {
        Some((s, e, to)) if size > 0 && off + size <= e => Some((to + off - s, size)),
        _ => None,
    }
}

/// Reads the parts of the module object `f` (of `len` bytes, read ahead in
/// `ra` by [`ReadAhead::fill`]) that the link uses into `buf`, as a compact ELF file of their size (see the module docs
/// above [`parts`]). The section-name table is read along with the other
/// sections; only if it names a `.modinfo` that its header alone did not
/// select (one without `SHF_ALLOC`) is the object read again with that
/// section too. Returns `false`, having read only the headers, if they
/// cannot be read this way (the caller then reads the file whole, and the
/// parser says what is wrong).
pub(crate) fn read_module_parts(
    f: &File,
    len: u64,
    ra: &ReadAhead,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let Some(mut p) = parts(f, len, ra, None)? else {
        return Ok(false);
    };
    let (names_at, names_len) = read_merged(f, ra, &mut p, buf)?;
    let names = &buf[names_at..names_at + names_len];
    let missed = (1..p.shnum).any(|i| {
        let (typ, flags, _, size, _, name) = sh(&p.sht, i);
        typ != elf::SHT_NOBITS
            && size > 0
            && flags & elf::SHF_ALLOC == 0
            && named_modinfo(name, names)
            && !wanted(&p.sht, p.shnum, p.shstrndx, i, None)
    });
    if missed {
        let names = names.to_vec();
        let Some(q) = parts(f, len, ra, Some(&names))? else {
            return Ok(false);
        };
        p = q;
        read_merged(f, ra, &mut p, buf)?;
    }
    let Parts {
        mut h,
        sht,
        shnum,
        merged,
        ..
    } = p;
    // The table is copied, then each entry rewritten in place.
    let table = &mut buf[EHDR_SIZE..EHDR_SIZE + sht.len()];
    table.copy_from_slice(&sht);
    for i in 1..shnum {
        let (typ, _, off, size, _, _) = sh(table, i);
        if typ == elf::SHT_NOBITS {
            continue;
        }
        let (new_off, new_size) = new_place(&merged, off, size).unwrap_or((0, 0));
        let s = &mut table[SHDR_SIZE * i as usize..][..SHDR_SIZE];
        s[SH_OFFSET..SH_OFFSET + 8].copy_from_slice(&new_off.to_le_bytes());
        s[SH_SIZE..SH_SIZE + 8].copy_from_slice(&new_size.to_le_bytes());
    }
    h[E_PHOFF..E_PHOFF + 8].fill(0);
    h[E_PHNUM..E_PHNUM + 2].fill(0);
    h[E_SHOFF..E_SHOFF + 8].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
    buf[..EHDR_SIZE].copy_from_slice(&h);
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
    use super::{ReadAhead, complement};
    use std::io::Write;

    /// A fake ELF64 file of `len` bytes whose header puts a section table
    /// of `shnum` entries at `shoff`; every other byte is `fill`.
    fn file(len: usize, shoff: u64, shnum: u16, fill: u8) -> std::fs::File {
        let mut b = vec![fill; len];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little-endian
        b[6] = 1; // EV_CURRENT
        b[super::E_SHOFF..super::E_SHOFF + 8].copy_from_slice(&shoff.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&b).unwrap();
        f
    }

    /// One reader reused for a file with larger windows and then for one
    /// with smaller ones (and bytes after its section table): the second
    /// file's bytes come from its own windows or from the file, never from
    /// what the buffers still hold of the first.
    #[test]
    fn a_reused_read_ahead_gives_only_the_current_files_bytes() {
        let mut ra = ReadAhead::default();
        let big = file(200 << 10, 150 << 10, 400, 0xaa);
        ra.fill(&big, 200 << 10).unwrap();
        let (len, shoff, shnum) = (100 << 10, 60 << 10, 100u16);
        let small = file(len, shoff, shnum, 0x55);
        ra.fill(&small, len as u64).unwrap();
        let table_end = shoff + 64 * shnum as u64;
        // Across the end of the first window, and across the end of the
        // second (the section table), into bytes neither window holds.
        for at in [(24 << 10) - 8, table_end - 8] {
            let mut got = [0u8; 16];
            ra.read_at(&small, &mut got, at).unwrap();
            assert_eq!(got, [0x55; 16], "bytes at {at:#x}");
            assert!(ra.window(at, 16).is_none(), "a window holds {at:#x}+16");
        }
        // A file with no second window (its section table is in the first).
        // Read where the previous file's second window was.
        let tiny = file(70 << 10, 1 << 10, 4, 0x33);
        ra.fill(&tiny, 70 << 10).unwrap();
        let mut got = [0u8; 16];
        ra.read_at(&tiny, &mut got, 58 << 10).unwrap();
        assert_eq!(got, [0x33; 16]);
    }

    #[test]
    fn complement_of_ranges() {
        assert_eq!(complement(10, &[(2, 4), (6, 10)]), vec![(0, 2), (4, 6)]);
        assert_eq!(complement(10, &[]), vec![(0, 10)]);
        assert_eq!(complement(10, &[(0, 10)]), Vec::<(u64, u64)>::new());
    }
}
