//! A small, strict ELF64 little-endian reader: just what the prelinker needs
//! from module objects and the kernel image (headers, sections, symbols,
//! `RELA` entries), with clear errors for truncated or foreign files. The
//! `object` crate decodes the headers and entries; this module adds the
//! checks and messages, and finds names only when they are asked for.
//!
//! Parsing borrows the file bytes; nothing is copied.

use crate::error::Result;
use crate::{bail, err};
use object::LittleEndian;
use object::read::elf::{FileHeader as _, Rela as _, SectionHeader as _, Sym as _};

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

/// The ELF64 little-endian types of the `object` crate this reader decodes
/// with.
type Header = object::elf::FileHeader64<LittleEndian>;
const LE: LittleEndian = LittleEndian;

impl<'a> ElfFile<'a> {
    /// Parses the ELF header and the section headers (decoded by the
    /// `object` crate). Only ELF64 little-endian files are accepted; other
    /// classes are reported with their machine so that an i386 object gets a
    /// clear message.
    pub fn parse(data: &'a [u8]) -> Result<ElfFile<'a>> {
        if data.len() < 4 || data[..4] != *b"\x7fELF" {
            bail!(Malformed, "not an ELF file (bad magic)");
        }
        if data.len() < 20 {
            bail!(Malformed, "truncated ELF header ({} bytes)", data.len());
        }
        let machine = u16::from_le_bytes([data[18], data[19]]);
        if data[4] != 2 {
            bail!(
                WrongKind,
                "{}-bit ELF for {}: expected a 64-bit x86_64 object",
                if data[4] == 1 { 32 } else { 0 },
                machine_name(machine)
            );
        }
        if data[5] != 1 {
            bail!(WrongKind, "big-endian ELF: expected little-endian x86_64");
        }
        if data.len() < 64 {
            bail!(Malformed, "truncated ELF header ({} bytes)", data.len());
        }
        let h = Header::parse(data).map_err(|e| err!(Malformed, "bad ELF header: {e}"))?;
        let e_type = h.e_type(LE).0;
        let (shoff, shnum) = (h.e_shoff(LE), h.shnum(LE, data).unwrap_or(0) as u64);
        if shoff != 0
            && shnum
                .checked_mul(64)
                .and_then(|n| n.checked_add(shoff))
                .is_none_or(|end| end > data.len() as u64)
        {
            bail!(
                Malformed,
                "the {shnum} section headers at offset {shoff:#x} lie past the end of the {}-byte file (truncated?)",
                data.len()
            );
        }
        let table = h
            .section_headers(LE, data)
            .map_err(|e| err!(Malformed, "malformed section headers: {e}"))?;
        if table.is_empty() {
            return Ok(ElfFile {
                data,
                e_type,
                machine,
                sections: Vec::new(),
            });
        }
        let mut sections = Vec::with_capacity(table.len());
        for (i, sh) in table.iter().enumerate() {
            let s = Section {
                name_tail: "",
                sh_type: sh.sh_type(LE).0,
                flags: sh.sh_flags(LE).0,
                addr: sh.sh_addr(LE),
                offset: sh.sh_offset(LE),
                size: sh.sh_size(LE),
                link: sh.sh_link(LE),
                info: sh.sh_info(LE),
                align: sh.sh_addralign(LE).max(1),
                entsize: sh.sh_entsize(LE),
            };
            if s.sh_type != SHT_NOBITS && i != 0 && sh.data(LE, data).is_err() {
                bail!(
                    Malformed,
                    "section {i} (offset {:#x}, size {:#x}) extends past the end of the {}-byte file (truncated?)",
                    s.offset,
                    s.size,
                    data.len()
                );
            }
            sections.push(s);
        }
        let shstrndx = h
            .shstrndx(LE, data)
            .map_err(|e| err!(Malformed, "bad section name table index: {e}"))?
            as usize;
        let strtab: &str = if shstrndx == 0 {
            ""
        } else {
            let sh = table.get(shstrndx).ok_or_else(|| {
                err!(
                    Malformed,
                    "section name table index {shstrndx} out of range"
                )
            })?;
            let bytes = sh
                .data(LE, data)
                .map_err(|e| err!(Malformed, "section name table: {e}"))?;
            if bytes.last().is_some_and(|&b| b != 0) {
                bail!(
                    Malformed,
                    "the section name table does not end with a NUL byte"
                );
            }
            std::str::from_utf8(bytes)
                .map_err(|_| err!(Malformed, "the section name table is not valid UTF-8"))?
        };
        for (i, (s, sh)) in sections.iter_mut().zip(table).enumerate() {
            let name_off = sh.sh_name(LE);
            s.name_tail = strtab.get(name_off as usize..).ok_or_else(|| {
                err!(Malformed, "section {i} has a bad name offset {name_off:#x}")
            })?;
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
        if s.sh_type == SHT_NOBITS || index == 0 || s.size == 0 {
            return &[];
        }
        // Bounds were checked by `parse` (an empty section may have any offset).
        &self.data[s.offset as usize..(s.offset + s.size) as usize]
    }

    /// Index of the first section with this name.
    pub fn section_by_name(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name_is(name))
    }

    /// Reads the (single) `SHT_SYMTAB` symbol table, decoded by the `object`
    /// crate; empty if there is none.
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
        if strtab.last().is_some_and(|&b| b != 0) {
            bail!(
                Malformed,
                "the symbol string table does not end with a NUL byte"
            );
        }
        let xindex = self
            .sections
            .iter()
            .position(|x| x.sh_type == SHT_SYMTAB_SHNDX && x.link as usize == idx)
            .map(|i| self.section_data(i));
        let syms: &[object::elf::Sym64<LittleEndian>] =
            object::pod::slice_from_all_bytes(self.section_data(idx)).map_err(|_| {
                err!(
                    Malformed,
                    "symbol table size {:#x} is not a multiple of 24",
                    s.size
                )
            })?;
        let mut out = Vec::with_capacity(syms.len());
        for (i, e) in syms.iter().enumerate() {
            let name_off = e.st_name(LE);
            let mut shndx = e.st_shndx(LE).0 as u32;
            if shndx == SHN_XINDEX as u32 {
                shndx = xindex
                    .and_then(|x| x.get(i * 4..i * 4 + 4))
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                    .ok_or_else(|| {
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
                bind: e.st_bind().0,
                typ: e.st_type().0,
                shndx,
                value: e.st_value(LE),
                size: e.st_size(LE),
            });
        }
        Ok(out)
    }

    /// The entries of a `SHT_RELA` section, decoded by the `object` crate.
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
        let relas: &[object::elf::Rela64<LittleEndian>] = object::pod::slice_from_all_bytes(data)
            .map_err(|_| {
            err!(
                Malformed,
                "section {} size {:#x} is not a multiple of 24",
                s.name(),
                data.len()
            )
        })?;
        Ok(relas.iter().map(|r| Rela {
            offset: r.r_offset(LE),
            sym: r.r_sym(LE, false),
            typ: r.r_type(LE, false).0,
            addend: r.r_addend(LE),
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
