//! A small, strict ELF64 little-endian reader: just what the prelinker needs
//! from module objects and the kernel image (headers, sections, symbols,
//! `RELA` entries), with clear errors for truncated or foreign files.
//!
//! Parsing borrows the file bytes; nothing is copied.

use crate::error::Result;
use crate::{bail, err};

/// `e_type` of a relocatable object.
pub const ET_REL: u16 = 1;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = 2;
/// `e_machine` of x86_64.
pub const EM_X86_64: u16 = 62;
/// Section type: program data.
pub const SHT_PROGBITS: u32 = 1;
/// Section type: symbol table.
pub const SHT_SYMTAB: u32 = 2;
/// Section type: string table.
pub const SHT_STRTAB: u32 = 3;
/// Section type: relocations with addends.
pub const SHT_RELA: u32 = 4;
/// Section type: zero-filled, no file bytes.
pub const SHT_NOBITS: u32 = 8;
/// Section type: relocations without addends.
pub const SHT_REL: u32 = 9;
/// Section type: extended section indices of a symbol table.
pub const SHT_SYMTAB_SHNDX: u32 = 18;
/// Section flag: writable.
pub const SHF_WRITE: u64 = 1;
/// Section flag: occupies memory.
pub const SHF_ALLOC: u64 = 2;
/// Section flag: executable.
pub const SHF_EXECINSTR: u64 = 4;
/// Section flag: thread-local storage.
pub const SHF_TLS: u64 = 0x400;
/// Undefined section index.
pub const SHN_UNDEF: u16 = 0;
/// Absolute symbol.
pub const SHN_ABS: u16 = 0xfff1;
/// Common symbol.
pub const SHN_COMMON: u16 = 0xfff2;
/// Extended section index.
pub const SHN_XINDEX: u16 = 0xffff;
/// Symbol binding: local.
pub const STB_LOCAL: u8 = 0;
/// Symbol binding: global.
pub const STB_GLOBAL: u8 = 1;
/// Symbol binding: weak.
pub const STB_WEAK: u8 = 2;
/// Symbol type: section.
pub const STT_SECTION: u8 = 3;
/// Symbol type: thread-local.
pub const STT_TLS: u8 = 6;

fn get<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    get(d, at).map(u16::from_le_bytes)
}
fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    get(d, at).map(u32::from_le_bytes)
}
fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    get(d, at).map(u64::from_le_bytes)
}

/// Name of an `e_machine` value, for messages.
pub fn machine_name(m: u16) -> String {
    match m {
        3 => "i386 (EM_386)".into(),
        62 => "x86_64".into(),
        40 => "ARM".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        _ => format!("machine {m}"),
    }
}

/// Name of an `e_type` value, for messages.
pub fn type_name(t: u16) -> &'static str {
    match t {
        0 => "ET_NONE",
        1 => "a relocatable object (ET_REL)",
        2 => "an executable (ET_EXEC)",
        3 => "a shared object or PIE (ET_DYN)",
        4 => "a core file (ET_CORE)",
        _ => "an ELF file of unknown type",
    }
}

/// One section header.
#[derive(Clone, Copy, Debug)]
pub struct Section<'a> {
    /// The section-name table from this name's first byte on (the name is
    /// found only when asked for).
    name_tail: &'a str,
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_link`.
    pub link: u32,
    /// `sh_info`.
    pub info: u32,
    /// `sh_addralign` (0 read as 1).
    pub align: u64,
    /// `sh_entsize`.
    pub entsize: u64,
}

impl<'a> Section<'a> {
    /// Section name (from the section-name table).
    pub fn name(&self) -> &'a str {
        // The table ends with a NUL (checked when it was read).
        self.name_tail
            .split_once('\0')
            .map_or(self.name_tail, |(n, _)| n)
    }

    /// Whether the section is called `name`, without finding where its name
    /// ends.
    pub fn name_is(&self, name: &str) -> bool {
        self.name_tail
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('\0'))
    }

    /// Whether the section's name starts with `prefix` (which has no NUL).
    pub fn name_starts_with(&self, prefix: &str) -> bool {
        self.name_tail.starts_with(prefix)
    }
}

/// A parsed ELF64 little-endian file.
#[derive(Debug)]
pub struct ElfFile<'a> {
    /// The whole file.
    pub data: &'a [u8],
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// Section headers, by index.
    pub sections: Vec<Section<'a>>,
}

/// One symbol table entry.
#[derive(Clone, Copy, Debug)]
pub struct Sym<'a> {
    /// The string table from the name's first byte on (the name is found
    /// only when asked for: most symbols' names are never needed).
    name_tail: &'a [u8],
    /// Binding (`STB_*`).
    pub bind: u8,
    /// Type (`STT_*`).
    pub typ: u8,
    /// Section index, with `SHN_XINDEX` already resolved (as a `u32`).
    pub shndx: u32,
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
}

impl<'a> Sym<'a> {
    /// Name (empty for section symbols).
    pub fn name(&self) -> &'a [u8] {
        // The string table ends with a NUL (checked when it was read).
        cstr_at(self.name_tail, 0).unwrap_or(self.name_tail)
    }
}

/// One `RELA` entry.
#[derive(Clone, Copy, Debug)]
pub struct Rela {
    /// `r_offset`.
    pub offset: u64,
    /// Symbol index.
    pub sym: u32,
    /// Relocation type.
    pub typ: u32,
    /// `r_addend`.
    pub addend: i64,
}

impl<'a> ElfFile<'a> {
    /// Parses the ELF header and the section headers. Only ELF64
    /// little-endian files are accepted; other classes are reported with
    /// their machine so that an i386 object gets a clear message.
    pub fn parse(data: &'a [u8]) -> Result<ElfFile<'a>> {
        if data.len() < 4 || data[..4] != *b"\x7fELF" {
            bail!(Malformed, "not an ELF file (bad magic)");
        }
        if data.len() < 20 {
            bail!(Malformed, "truncated ELF header ({} bytes)", data.len());
        }
        let machine = u16_at(data, 18).unwrap_or(0);
        let e_type = u16_at(data, 16).unwrap_or(0);
        if data[4] != 2 {
            bail!(
                WrongKind,
                "{}-bit ELF for {}: expected a 64-bit x86_64 object",
                if data[4] == 1 { 32 } else { 0 },
                machine_name(u16::from_le_bytes([data[18], data[19]]))
            );
        }
        if data[5] != 1 {
            bail!(WrongKind, "big-endian ELF: expected little-endian x86_64");
        }
        if data.len() < 64 {
            bail!(Malformed, "truncated ELF header ({} bytes)", data.len());
        }
        let shoff = u64_at(data, 40).unwrap();
        let shentsize = u16_at(data, 58).unwrap();
        let mut shnum = u16_at(data, 60).unwrap() as u64;
        let mut shstrndx = u16_at(data, 62).unwrap() as u32;
        if shoff == 0 {
            return Ok(ElfFile {
                data,
                e_type,
                machine,
                sections: Vec::new(),
            });
        }
        if shentsize != 64 {
            bail!(Malformed, "section header size {shentsize}, expected 64");
        }
        let sh = |i: u64| -> Result<&'a [u8]> {
            let at = i
                .checked_mul(64)
                .and_then(|o| o.checked_add(shoff))
                .filter(|&o| o.checked_add(64).is_some_and(|e| e <= data.len() as u64))
                .ok_or_else(|| {
                    err!(
                        Malformed,
                        "section header {i} lies past the end of the file (truncated?)"
                    )
                })?;
            Ok(&data[at as usize..at as usize + 64])
        };
        if shnum == 0 {
            shnum = u64_at(sh(0)?, 32).unwrap();
        }
        if shstrndx == SHN_XINDEX as u32 {
            shstrndx = u32_at(sh(0)?, 40).unwrap();
        }
        if shnum > (data.len() as u64) / 64 {
            bail!(
                Malformed,
                "{shnum} section headers cannot fit in a {}-byte file (truncated?)",
                data.len()
            );
        }
        let mut raw = Vec::with_capacity(shnum as usize);
        for i in 0..shnum {
            let h = sh(i)?;
            let s = Section {
                name_tail: "",
                sh_type: u32_at(h, 4).unwrap(),
                flags: u64_at(h, 8).unwrap(),
                addr: u64_at(h, 16).unwrap(),
                offset: u64_at(h, 24).unwrap(),
                size: u64_at(h, 32).unwrap(),
                link: u32_at(h, 40).unwrap(),
                info: u32_at(h, 44).unwrap(),
                align: u64_at(h, 48).unwrap().max(1),
                entsize: u64_at(h, 56).unwrap(),
            };
            if s.sh_type != SHT_NOBITS && i != 0 {
                let end = s.offset.checked_add(s.size);
                if end.is_none_or(|e| e > data.len() as u64) {
                    bail!(
                        Malformed,
                        "section {i} (offset {:#x}, size {:#x}) extends past the end of the {}-byte file (truncated?)",
                        s.offset,
                        s.size,
                        data.len()
                    );
                }
            }
            raw.push((u32_at(h, 0).unwrap(), s));
        }
        let strtab: &str = if shstrndx == 0 {
            ""
        } else {
            let s = raw
                .get(shstrndx as usize)
                .ok_or_else(|| {
                    err!(
                        Malformed,
                        "section name table index {shstrndx} out of range"
                    )
                })?
                .1;
            let bytes = &data[s.offset as usize..(s.offset + s.size) as usize];
            if bytes.last().is_some_and(|&b| b != 0) {
                bail!(
                    Malformed,
                    "the section name table does not end with a NUL byte"
                );
            }
            std::str::from_utf8(bytes)
                .map_err(|_| err!(Malformed, "the section name table is not valid UTF-8"))?
        };
        let mut sections = Vec::with_capacity(raw.len());
        for (i, (name_off, mut s)) in raw.into_iter().enumerate() {
            s.name_tail = strtab.get(name_off as usize..).ok_or_else(|| {
                err!(Malformed, "section {i} has a bad name offset {name_off:#x}")
            })?;
            sections.push(s);
        }
        Ok(ElfFile {
            data,
            e_type,
            machine,
            sections,
        })
    }

    /// The file bytes of a section (empty for `SHT_NOBITS`).
    pub fn section_data(&self, index: usize) -> &'a [u8] {
        let s = &self.sections[index];
        if s.sh_type == SHT_NOBITS || index == 0 {
            return &[];
        }
        // Bounds were checked by `parse`.
        &self.data[s.offset as usize..(s.offset + s.size) as usize]
    }

    /// Index of the first section with this name.
    pub fn section_by_name(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name_is(name))
    }

    /// Reads the (single) `SHT_SYMTAB` symbol table; empty if there is none.
    pub fn symbols(&self) -> Result<Vec<Sym<'a>>> {
        let Some(idx) = self.sections.iter().position(|s| s.sh_type == SHT_SYMTAB) else {
            return Ok(Vec::new());
        };
        let s = self.sections[idx];
        if s.entsize != 24 && s.entsize != 0 {
            bail!(
                Malformed,
                "symbol table entry size {}, expected 24",
                s.entsize
            );
        }
        let strtab = match self.sections.get(s.link as usize) {
            Some(_) if s.link != 0 => self.section_data(s.link as usize),
            _ => bail!(
                Malformed,
                "symbol table has no string table (sh_link {})",
                s.link
            ),
        };
        let xindex = self
            .sections
            .iter()
            .position(|x| x.sh_type == SHT_SYMTAB_SHNDX && x.link as usize == idx)
            .map(|i| self.section_data(i));
        if strtab.last().is_some_and(|&b| b != 0) {
            bail!(
                Malformed,
                "the symbol string table does not end with a NUL byte"
            );
        }
        let data = self.section_data(idx);
        let n = data.len() / 24;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let e = &data[i * 24..i * 24 + 24];
            let name_off = u32_at(e, 0).unwrap();
            let info = e[4];
            let mut shndx = u16_at(e, 6).unwrap() as u32;
            if shndx == SHN_XINDEX as u32 {
                shndx = xindex.and_then(|x| u32_at(x, i * 4)).ok_or_else(|| {
                    err!(Malformed, "symbol {i} has SHN_XINDEX but no extended index")
                })?;
            }
            let name_tail = if name_off == 0 {
                &[][..]
            } else {
                strtab.get(name_off as usize..).ok_or_else(|| {
                    err!(Malformed, "symbol {i} has a bad name offset {name_off:#x}")
                })?
            };
            out.push(Sym {
                name_tail,
                bind: info >> 4,
                typ: info & 0xf,
                shndx,
                value: u64_at(e, 8).unwrap(),
                size: u64_at(e, 16).unwrap(),
            });
        }
        Ok(out)
    }

    /// The entries of a `SHT_RELA` section.
    pub fn relas(&self, index: usize) -> Result<impl ExactSizeIterator<Item = Rela> + 'a> {
        let s = &self.sections[index];
        if s.entsize != 24 && s.entsize != 0 {
            bail!(
                Malformed,
                "section {} has RELA entry size {}, expected 24",
                s.name(),
                s.entsize
            );
        }
        let data = self.section_data(index);
        if !data.len().is_multiple_of(24) {
            bail!(
                Malformed,
                "section {} size {:#x} is not a multiple of 24",
                s.name(),
                data.len()
            );
        }
        Ok(data.chunks_exact(24).map(|e| {
            let info = u64::from_le_bytes(e[8..16].try_into().unwrap());
            Rela {
                offset: u64::from_le_bytes(e[0..8].try_into().unwrap()),
                sym: (info >> 32) as u32,
                typ: info as u32,
                addend: i64::from_le_bytes(e[16..24].try_into().unwrap()),
            }
        }))
    }
}

fn cstr_at(tab: &[u8], at: usize) -> Option<&[u8]> {
    // `from_bytes_until_nul` searches a word at a time: names of
    // function sections are long, and there are thousands of them.
    let rest = tab.get(at..)?;
    Some(std::ffi::CStr::from_bytes_until_nul(rest).ok()?.to_bytes())
}

/// Name of an x86_64 relocation type, for messages.
pub fn reloc_name(t: u32) -> String {
    const NAMES: [&str; 43] = [
        "R_X86_64_NONE",
        "R_X86_64_64",
        "R_X86_64_PC32",
        "R_X86_64_GOT32",
        "R_X86_64_PLT32",
        "R_X86_64_COPY",
        "R_X86_64_GLOB_DAT",
        "R_X86_64_JUMP_SLOT",
        "R_X86_64_RELATIVE",
        "R_X86_64_GOTPCREL",
        "R_X86_64_32",
        "R_X86_64_32S",
        "R_X86_64_16",
        "R_X86_64_PC16",
        "R_X86_64_8",
        "R_X86_64_PC8",
        "R_X86_64_DTPMOD64",
        "R_X86_64_DTPOFF64",
        "R_X86_64_TPOFF64",
        "R_X86_64_TLSGD",
        "R_X86_64_TLSLD",
        "R_X86_64_DTPOFF32",
        "R_X86_64_GOTTPOFF",
        "R_X86_64_TPOFF32",
        "R_X86_64_PC64",
        "R_X86_64_GOTOFF64",
        "R_X86_64_GOTPC32",
        "R_X86_64_GOT64",
        "R_X86_64_GOTPCREL64",
        "R_X86_64_GOTPC64",
        "R_X86_64_GOTPLT64",
        "R_X86_64_PLTOFF64",
        "R_X86_64_SIZE32",
        "R_X86_64_SIZE64",
        "R_X86_64_GOTPC32_TLSDESC",
        "R_X86_64_TLSDESC_CALL",
        "R_X86_64_TLSDESC",
        "R_X86_64_IRELATIVE",
        "R_X86_64_RELATIVE64",
        "R_X86_64_39",
        "R_X86_64_40",
        "R_X86_64_GOTPCRELX",
        "R_X86_64_REX_GOTPCRELX",
    ];
    NAMES
        .get(t as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("R_X86_64_<{t}>"))
}
