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

// The ELF constants the prelinker uses, as the raw integers of the header
// fields it compares them with. The values are `object::elf`'s (whose
// constants are typed wrappers: `.0` is the raw value).

/// `e_type` of a relocatable object.
pub const ET_REL: u16 = object::elf::ET_REL.0;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = object::elf::ET_EXEC.0;
/// `e_machine` of x86_64.
pub const EM_X86_64: u16 = object::elf::EM_X86_64.0;
/// Section type: program data.
pub const SHT_PROGBITS: u32 = object::elf::SHT_PROGBITS.0;
/// Section type: symbol table.
pub const SHT_SYMTAB: u32 = object::elf::SHT_SYMTAB.0;
/// Section type: string table.
pub const SHT_STRTAB: u32 = object::elf::SHT_STRTAB.0;
/// Section type: relocations with addends.
pub const SHT_RELA: u32 = object::elf::SHT_RELA.0;
/// Section type: zero-filled, no file bytes.
pub const SHT_NOBITS: u32 = object::elf::SHT_NOBITS.0;
/// Section type: relocations without addends.
pub const SHT_REL: u32 = object::elf::SHT_REL.0;
/// Section type: extended section indices of a symbol table.
pub const SHT_SYMTAB_SHNDX: u32 = object::elf::SHT_SYMTAB_SHNDX.0;
/// Section flag: writable.
pub const SHF_WRITE: u64 = object::elf::SHF_WRITE.0;
/// Section flag: occupies memory.
pub const SHF_ALLOC: u64 = object::elf::SHF_ALLOC.0;
/// Section flag: executable.
pub const SHF_EXECINSTR: u64 = object::elf::SHF_EXECINSTR.0;
/// Section flag: thread-local storage.
pub const SHF_TLS: u64 = object::elf::SHF_TLS.0;
/// Undefined section index.
pub const SHN_UNDEF: u16 = object::elf::SHN_UNDEF.0;
/// Absolute symbol.
pub const SHN_ABS: u16 = object::elf::SHN_ABS.0;
/// Common symbol.
pub const SHN_COMMON: u16 = object::elf::SHN_COMMON.0;
/// Extended section index.
pub const SHN_XINDEX: u16 = object::elf::SHN_XINDEX.0;
/// Symbol binding: local.
pub const STB_LOCAL: u8 = object::elf::STB_LOCAL.0;
/// Symbol binding: global.
pub const STB_GLOBAL: u8 = object::elf::STB_GLOBAL.0;
/// Symbol binding: weak.
pub const STB_WEAK: u8 = object::elf::STB_WEAK.0;
/// Symbol type: section.
pub const STT_SECTION: u8 = object::elf::STT_SECTION.0;
/// Symbol type: thread-local.
pub const STT_TLS: u8 = object::elf::STT_TLS.0;
/// Symbol type: an indirect function (resolved by a run-time resolver).
pub const STT_GNU_IFUNC: u8 = object::elf::STT_GNU_IFUNC.0;
/// `e_ident[EI_CLASS]` of a 64-bit file.
const ELFCLASS64: u8 = object::elf::ELFCLASS64.0;
/// `e_ident[EI_CLASS]` of a 32-bit file.
const ELFCLASS32: u8 = object::elf::ELFCLASS32.0;
/// `e_ident[EI_DATA]` of a little-endian file.
const ELFDATA2LSB: u8 = object::elf::ELFDATA2LSB.0;

/// Whether `header` (at least the first 6 bytes of a file) starts an ELF64
/// little-endian file: the only kind the prelinker reads.
pub fn is_elf64_le(header: &[u8]) -> bool {
    header.len() >= 6
        && header[..4] == object::elf::ELFMAG
        && header[4] == ELFCLASS64
        && header[5] == ELFDATA2LSB
}

/// Name of an `e_machine` value, for messages.
pub fn machine_name(m: u16) -> String {
    const EM_386: u16 = object::elf::EM_386.0;
    const EM_ARM: u16 = object::elf::EM_ARM.0;
    const EM_AARCH64: u16 = object::elf::EM_AARCH64.0;
    const EM_RISCV: u16 = object::elf::EM_RISCV.0;
    match m {
        EM_386 => "i386 (EM_386)".into(),
        EM_X86_64 => "x86_64".into(),
        EM_ARM => "ARM".into(),
        EM_AARCH64 => "AArch64".into(),
        EM_RISCV => "RISC-V".into(),
        _ => format!("machine {m}"),
    }
}

/// Name of an `e_type` value, for messages.
pub fn type_name(t: u16) -> &'static str {
    const ET_NONE: u16 = object::elf::ET_NONE.0;
    const ET_DYN: u16 = object::elf::ET_DYN.0;
    const ET_CORE: u16 = object::elf::ET_CORE.0;
    match t {
        ET_NONE => "ET_NONE",
        ET_REL => "a relocatable object (ET_REL)",
        ET_EXEC => "an executable (ET_EXEC)",
        ET_DYN => "a shared object or PIE (ET_DYN)",
        ET_CORE => "a core file (ET_CORE)",
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

    /// For a section whose name starts with `.rela`: whether the rest of
    /// its name is `target`'s name (`None` for other names). Compilers
    /// store the target's name as the tail of the relocation section's in
    /// the string table, which answers without reading either name.
    pub fn name_tail_is_rela_of(&self, target: &Section<'_>) -> Option<bool> {
        let rest = self.name_tail.strip_prefix(".rela")?;
        Some(rest.len() == target.name_tail.len() || rest.split('\0').next() == Some(target.name()))
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
        if data.len() < 4 || data[..4] != object::elf::ELFMAG {
            bail!(Malformed, "not an ELF file (bad magic)");
        }
        if data.len() < 20 {
            bail!(Malformed, "truncated ELF header ({} bytes)", data.len());
        }
        let machine = u16::from_le_bytes([data[18], data[19]]);
        if data[4] != ELFCLASS64 {
            bail!(
                WrongKind,
                "{}-bit ELF for {}: expected a 64-bit x86_64 object",
                if data[4] == ELFCLASS32 { 32 } else { 0 },
                machine_name(machine)
            );
        }
        if data[5] != ELFDATA2LSB {
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
        if table[0].sh_type(LE) != object::elf::SHT_NULL {
            bail!(
                Malformed,
                "section header 0 is not the null section (type {})",
                table[0].sh_type(LE)
            );
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
        // `sh_info` is one past the last local symbol: locals first, then
        // the others (the null symbol, index 0, is local).
        let first_global = s.info as usize;
        if !syms.is_empty() && (first_global == 0 || first_global > syms.len()) {
            bail!(
                Malformed,
                "symbol table (section {}) gives sh_info {first_global} as its first non-local symbol, but has {} symbols",
                s.name(),
                syms.len()
            );
        }
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
            let bind = e.st_bind().0;
            if (bind == STB_LOCAL) != (i < first_global) {
                let name = cstr_at(name_tail, 0).unwrap_or(name_tail);
                let named = if name.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", String::from_utf8_lossy(name))
                };
                bail!(
                    Malformed,
                    "symbol {i}{named} of the symbol table (section {}) is {}, but its sh_info ({first_global}) puts the local symbols before index {first_global}",
                    s.name(),
                    if bind == STB_LOCAL {
                        "local"
                    } else {
                        "not local"
                    },
                );
            }
            out.push(Sym {
                name_tail,
                bind,
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

/// Name of an x86_64 relocation type, for messages (object's name for it,
/// or `R_X86_64_<n>` for a number it does not know).
pub fn reloc_name(t: u32) -> String {
    object::elf::machine_names(object::elf::EM_X86_64)
        .r
        .name(object::elf::RelocationType(t))
        .map_or_else(|| format!("R_X86_64_<{t}>"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use goblin::elf::{header as gh, reloc as gr, section_header as gs, sym as gy};

    /// object's constants, as this module takes them, agree with goblin's
    /// (an independent copy of the ELF specification's numbers).
    #[test]
    fn constants_agree_with_goblin() {
        assert_eq!(
            [ET_REL, ET_EXEC, EM_X86_64],
            [gh::ET_REL, gh::ET_EXEC, gh::EM_X86_64]
        );
        assert_eq!(
            [
                SHT_PROGBITS,
                SHT_SYMTAB,
                SHT_STRTAB,
                SHT_RELA,
                SHT_NOBITS,
                SHT_REL,
                SHT_SYMTAB_SHNDX
            ],
            [
                gs::SHT_PROGBITS,
                gs::SHT_SYMTAB,
                gs::SHT_STRTAB,
                gs::SHT_RELA,
                gs::SHT_NOBITS,
                gs::SHT_REL,
                gs::SHT_SYMTAB_SHNDX
            ]
        );
        assert_eq!(
            [SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_TLS],
            [gs::SHF_WRITE, gs::SHF_ALLOC, gs::SHF_EXECINSTR, gs::SHF_TLS].map(u64::from)
        );
        assert_eq!(
            [SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_XINDEX].map(u32::from),
            [gs::SHN_UNDEF, gs::SHN_ABS, gs::SHN_COMMON, gs::SHN_XINDEX]
        );
        assert_eq!(
            [STB_LOCAL, STB_GLOBAL, STB_WEAK, STT_SECTION, STT_TLS],
            [
                gy::STB_LOCAL,
                gy::STB_GLOBAL,
                gy::STB_WEAK,
                gy::STT_SECTION,
                gy::STT_TLS
            ]
        );
        assert_eq!(
            [ELFCLASS32, ELFCLASS64, ELFDATA2LSB],
            [gh::ELFCLASS32, gh::ELFCLASS64, gh::ELFDATA2LSB]
        );
        use crate::relocate::*;
        assert_eq!(
            [
                R_NONE,
                R_64,
                R_PC32,
                R_PLT32,
                R_GOTPCREL,
                R_32,
                R_32S,
                R_PC64,
                R_GOTPCRELX,
                R_REX_GOTPCRELX
            ],
            [
                gr::R_X86_64_NONE,
                gr::R_X86_64_64,
                gr::R_X86_64_PC32,
                gr::R_X86_64_PLT32,
                gr::R_X86_64_GOTPCREL,
                gr::R_X86_64_32,
                gr::R_X86_64_32S,
                gr::R_X86_64_PC64,
                gr::R_X86_64_GOTPCRELX,
                gr::R_X86_64_REX_GOTPCRELX
            ]
        );
    }

    #[test]
    fn names_for_messages() {
        // goblin names the types it knows without the `R_` prefix.
        let mut known = 0;
        for t in 0..=42 {
            let g = gr::r_to_str(t, gh::EM_X86_64);
            if g != "R_UNKNOWN_X86_64" {
                assert_eq!(reloc_name(t), format!("R_{g}"), "type {t}");
                known += 1;
            }
        }
        assert_eq!(known, 40);
        assert_eq!(reloc_name(0), "R_X86_64_NONE");
        assert_eq!(reloc_name(4), "R_X86_64_PLT32");
        assert_eq!(reloc_name(9999), "R_X86_64_<9999>");
        assert_eq!(machine_name(3), "i386 (EM_386)");
        assert_eq!(machine_name(62), "x86_64");
        assert_eq!(type_name(1), "a relocatable object (ET_REL)");
        assert_eq!(type_name(3), "a shared object or PIE (ET_DYN)");
        assert!(is_elf64_le(b"\x7fELF\x02\x01"));
        assert!(!is_elf64_le(b"\x7fELF\x01\x01") && !is_elf64_le(b"\x7fELF\x02\x02"));
        assert!(!is_elf64_le(b"!<arch>\n") && !is_elf64_le(b"\x7fEL"));
    }
}
