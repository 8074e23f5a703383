//! Binary layout of the module table in the image's `.modtable` section.
//!
//! All integers are little-endian. Layout:
//!
//! ```text
//! header        HEADER_SIZE bytes
//! modules       module_count × MODULE_RECORD_SIZE
//! relocs        relocs_count × RELOC_RECORD_SIZE (each module owns a run)
//! deps          deps_count × u16 (module indices; each module owns a run)
//! strings       strings_len bytes (module names, UTF-8, not NUL-terminated)
//! ```
//!
//! Modules appear in slot order, which is also probe order: every module's
//! dependencies have smaller indices. A relocation record says where a field
//! is (`place_class`, `place_off` inside this module's slot of that class)
//! and what it refers to: `base(target) + addend`, where `base` is the
//! current address of another (or the same) module's class, or 0 for an
//! absolute target (a kernel export). The table only records relocations whose
//! value can change when modules move.
//!
//! The header carries an FNV-1a checksum of the whole table (computed with
//! the checksum field zeroed), so a table the kernel reads is the one the
//! prelinker wrote.

use crate::checksum::Fnv64;
use crate::{Class, PerClass, RelocKind};
use core::fmt;

/// Magic bytes at the start of a module table.
pub const MAGIC: [u8; 8] = *b"PLMODTAB";
/// Table format version.
pub const VERSION: u32 = 1;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 112;
/// Size of one module record in bytes.
pub const MODULE_RECORD_SIZE: usize = 96;
/// Size of one relocation record in bytes.
pub const RELOC_RECORD_SIZE: usize = 16;
/// `probe_off`/`selftest_off` value meaning "no such entry point".
pub const NO_ENTRY: u32 = u32::MAX;
const TARGET_ABSOLUTE: u32 = 3;
const CHECKSUM_AT: usize = 104;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Table-wide facts: where the regions are and how the slots were aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Number of modules.
    pub module_count: u32,
    /// Alignment of every slot inside its region, in bytes.
    pub slot_align: u32,
    /// Virtual address of each class region.
    pub region_base: PerClass<u64>,
    /// Size of each class region in bytes.
    pub region_size: PerClass<u64>,
}

/// Where a relocated field points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A fixed address (a kernel export): the addend is the whole value.
    Absolute,
    /// A class of a module (possibly the relocated module itself): the value
    /// is that class's current base address plus the addend.
    Module {
        /// Index of the module in the table.
        module: u16,
        /// Which of its classes.
        class: Class,
    },
}

/// One relocation the kernel redoes when a module moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelocRecord {
    /// Offset of the field inside this module's slot of `place_class`.
    pub place_off: u32,
    /// Class holding the field.
    pub place_class: Class,
    /// How the field is computed.
    pub kind: RelocKind,
    /// What the field refers to.
    pub target: Target,
    /// Offset inside the target class plus the ELF addend (or the absolute value).
    pub addend: i64,
}

impl RelocRecord {
    /// Encodes the record.
    pub fn to_bytes(&self) -> [u8; RELOC_RECORD_SIZE] {
        let (tclass, tmod) = match self.target {
            Target::Absolute => (TARGET_ABSOLUTE, 0u32),
            Target::Module { module, class } => (class as u32, module as u32),
        };
        let info = self.kind as u32 | (self.place_class as u32) << 8 | tclass << 10 | tmod << 16;
        let mut b = [0u8; RELOC_RECORD_SIZE];
        b[0..4].copy_from_slice(&self.place_off.to_le_bytes());
        b[4..8].copy_from_slice(&info.to_le_bytes());
        b[8..16].copy_from_slice(&self.addend.to_le_bytes());
        b
    }

    /// Decodes a record; `None` if a field holds an invalid value.
    pub fn from_bytes(b: &[u8]) -> Option<RelocRecord> {
        let place_off = u32_at(b, 0);
        let info = u32_at(b, 4);
        let kind = RelocKind::from_u8(info as u8)?;
        let place_class = Class::from_index((info >> 8) & 3)?;
        let tclass = (info >> 10) & 3;
        let target = if tclass == TARGET_ABSOLUTE {
            Target::Absolute
        } else {
            Target::Module {
                module: (info >> 16) as u16,
                class: Class::from_index(tclass)?,
            }
        };
        Some(RelocRecord {
            place_off,
            place_class,
            kind,
            target,
            addend: u64_at(b, 8) as i64,
        })
    }
}

/// One module's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleRecord {
    /// Offset of the name in the string area.
    pub name_off: u32,
    /// Length of the name in bytes.
    pub name_len: u32,
    /// Index of the first dependency in the deps array.
    pub deps_start: u32,
    /// Number of dependencies.
    pub deps_count: u32,
    /// Offset of the module's slot inside each class region.
    pub slot_off: PerClass<u32>,
    /// Size reserved for the slot in each region (a multiple of the slot alignment).
    pub slot_size: PerClass<u32>,
    /// Bytes the module really uses in each class (data includes bss).
    pub size: PerClass<u32>,
    /// Largest section alignment in each class; the kernel never packs a
    /// class at a smaller alignment than this.
    pub align: PerClass<u32>,
    /// Bytes at the end of the data class that are bss.
    pub bss_size: u32,
    /// Offset of the probe entry inside the text slot.
    pub probe_off: u32,
    /// Offset of the self-test entry inside the text slot, or [`NO_ENTRY`].
    pub selftest_off: u32,
    /// Index of the module's first relocation record.
    pub relocs_start: u32,
    /// Number of relocation records.
    pub relocs_count: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// [`crate::checksum::module_checksum`] of the used slot bytes as prelinked.
    pub checksum: u64,
}

impl ModuleRecord {
    /// Encodes the record.
    pub fn to_bytes(&self) -> [u8; MODULE_RECORD_SIZE] {
        let mut words = [0u32; 22];
        words[0] = self.name_off;
        words[1] = self.name_len;
        words[2] = self.deps_start;
        words[3] = self.deps_count;
        words[4..7].copy_from_slice(&self.slot_off.0);
        words[7..10].copy_from_slice(&self.slot_size.0);
        words[10..13].copy_from_slice(&self.size.0);
        words[13..16].copy_from_slice(&self.align.0);
        words[16] = self.bss_size;
        words[17] = self.probe_off;
        words[18] = self.selftest_off;
        words[19] = self.relocs_start;
        words[20] = self.relocs_count;
        words[21] = self.flags;
        let mut b = [0u8; MODULE_RECORD_SIZE];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b[88..96].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// Decodes a record.
    pub fn from_bytes(b: &[u8]) -> ModuleRecord {
        let w = |i: usize| u32_at(b, i * 4);
        let pc = |i: usize| PerClass([w(i), w(i + 1), w(i + 2)]);
        ModuleRecord {
            name_off: w(0),
            name_len: w(1),
            deps_start: w(2),
            deps_count: w(3),
            slot_off: pc(4),
            slot_size: pc(7),
            size: pc(10),
            align: pc(13),
            bss_size: w(16),
            probe_off: w(17),
            selftest_off: w(18),
            relocs_start: w(19),
            relocs_count: w(20),
            flags: w(21),
            checksum: u64_at(b, 88),
        }
    }
}

/// Why a table could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The area does not start with [`MAGIC`] (the image was not prelinked).
    NoMagic,
    /// A version this reader does not know.
    Version(u32),
    /// An array or string lies outside the table.
    OutOfBounds(&'static str),
    /// The table's checksum does not match its bytes.
    Checksum {
        /// Checksum stored in the header.
        stored: u64,
        /// Checksum of the bytes.
        computed: u64,
    },
    /// A module record is inconsistent (bad name, dependency or relocation run).
    BadModule {
        /// Index of the module.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::NoMagic => write!(f, "no module table (the image was not prelinked)"),
            TableError::Version(v) => write!(f, "module table version {v}, expected {VERSION}"),
            TableError::OutOfBounds(what) => write!(f, "module table: {what} out of bounds"),
            TableError::Checksum { stored, computed } => write!(
                f,
                "module table checksum {computed:#018x} does not match stored {stored:#018x}"
            ),
            TableError::BadModule { index, what } => {
                write!(f, "module table entry {index}: {what}")
            }
        }
    }
}

/// A validated, zero-copy view of a module table.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a> {
    bytes: &'a [u8],
    header: Header,
    modules_off: usize,
    relocs_off: usize,
    relocs_count: usize,
    deps_off: usize,
    deps_count: usize,
    strings_off: usize,
    strings_len: usize,
}

fn table_checksum(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::default();
    h.update(&bytes[..CHECKSUM_AT]);
    h.update(&[0u8; 8]);
    h.update(&bytes[CHECKSUM_AT + 8..]);
    h.finish()
}

fn span(
    off: u32,
    count: u32,
    size: usize,
    total: usize,
    what: &'static str,
) -> Result<(usize, usize), TableError> {
    let off = off as usize;
    let end = (count as usize)
        .checked_mul(size)
        .and_then(|n| n.checked_add(off))
        .filter(|&e| e <= total)
        .ok_or(TableError::OutOfBounds(what))?;
    Ok((off, end))
}

impl<'a> Table<'a> {
    /// Validates and wraps the bytes of a `.modtable` area (which may be
    /// longer than the table itself).
    pub fn parse(area: &'a [u8]) -> Result<Table<'a>, TableError> {
        if area.len() < HEADER_SIZE || area[..8] != MAGIC {
            return Err(TableError::NoMagic);
        }
        let version = u32_at(area, 8);
        if version != VERSION {
            return Err(TableError::Version(version));
        }
        let table_size = u32_at(area, 20) as usize;
        if table_size < HEADER_SIZE || table_size > area.len() {
            return Err(TableError::OutOfBounds("table size"));
        }
        let bytes = &area[..table_size];
        let stored = u64_at(bytes, CHECKSUM_AT);
        let computed = table_checksum(bytes);
        if stored != computed {
            return Err(TableError::Checksum { stored, computed });
        }
        let pc64 = |at: usize| {
            PerClass([
                u64_at(bytes, at),
                u64_at(bytes, at + 8),
                u64_at(bytes, at + 16),
            ])
        };
        let header = Header {
            module_count: u32_at(bytes, 12),
            slot_align: u32_at(bytes, 16),
            region_base: pc64(24),
            region_size: pc64(48),
        };
        let (modules_off, _) = span(
            u32_at(bytes, 72),
            header.module_count,
            MODULE_RECORD_SIZE,
            table_size,
            "module records",
        )?;
        let relocs_count = u32_at(bytes, 80);
        let (relocs_off, _) = span(
            u32_at(bytes, 76),
            relocs_count,
            RELOC_RECORD_SIZE,
            table_size,
            "relocation records",
        )?;
        let deps_count = u32_at(bytes, 88);
        let (deps_off, _) = span(
            u32_at(bytes, 84),
            deps_count,
            2,
            table_size,
            "dependency list",
        )?;
        let strings_len = u32_at(bytes, 96);
        let (strings_off, _) = span(u32_at(bytes, 92), strings_len, 1, table_size, "strings")?;
        let t = Table {
            bytes,
            header,
            modules_off,
            relocs_off,
            relocs_count: relocs_count as usize,
            deps_off,
            deps_count: deps_count as usize,
            strings_off,
            strings_len: strings_len as usize,
        };
        for i in 0..header.module_count {
            t.check_module(i)?;
        }
        Ok(t)
    }

    fn check_module(&self, index: u32) -> Result<(), TableError> {
        let m = self.module(index as usize);
        let bad = |what| TableError::BadModule { index, what };
        let name_end = m.name_off as usize + m.name_len as usize;
        if name_end > self.strings_len {
            return Err(bad("name out of bounds"));
        }
        let s = &self.bytes[self.strings_off + m.name_off as usize..self.strings_off + name_end];
        if core::str::from_utf8(s).is_err() {
            return Err(bad("name is not UTF-8"));
        }
        if m.deps_start as usize + m.deps_count as usize > self.deps_count {
            return Err(bad("dependencies out of bounds"));
        }
        if self.deps(&m).any(|d| d as u32 >= index) {
            return Err(bad("dependency is not an earlier module"));
        }
        if m.relocs_start as usize + m.relocs_count as usize > self.relocs_count {
            return Err(bad("relocations out of bounds"));
        }
        for c in Class::ALL {
            if m.size[c] > m.slot_size[c] {
                return Err(bad("size larger than slot"));
            }
            let end = m.slot_off[c] as u64 + m.slot_size[c] as u64;
            if end > self.header.region_size[c] {
                return Err(bad("slot outside its region"));
            }
            if !m.align[c].is_power_of_two() {
                return Err(bad("alignment is not a power of two"));
            }
        }
        if m.bss_size > m.size[Class::Data] {
            return Err(bad("bss larger than data"));
        }
        if m.probe_off >= m.size[Class::Text] {
            return Err(bad("probe entry outside text"));
        }
        if m.selftest_off != NO_ENTRY && m.selftest_off >= m.size[Class::Text] {
            return Err(bad("selftest entry outside text"));
        }
        for r in self.relocs(&m) {
            let r = r.ok_or(bad("invalid relocation record"))?;
            if r.place_off as u64 + r.kind.width() as u64 > m.size[r.place_class] as u64 {
                return Err(bad("relocation outside its class"));
            }
            if let Target::Module { module, .. } = r.target
                && module as u32 > index
            {
                return Err(bad("relocation refers to a later module"));
            }
        }
        Ok(())
    }

    /// Table-wide facts.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.header.module_count as usize
    }

    /// Whether the table has no modules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of module `i` (panics if `i >= len()`).
    pub fn module(&self, i: usize) -> ModuleRecord {
        assert!(i < self.len());
        let at = self.modules_off + i * MODULE_RECORD_SIZE;
        ModuleRecord::from_bytes(&self.bytes[at..at + MODULE_RECORD_SIZE])
    }

    /// The name of a module.
    pub fn name(&self, m: &ModuleRecord) -> &'a str {
        let at = self.strings_off + m.name_off as usize;
        core::str::from_utf8(&self.bytes[at..at + m.name_len as usize]).unwrap_or("<invalid>")
    }

    /// The dependencies (module indices) of a module.
    pub fn deps(&self, m: &ModuleRecord) -> impl Iterator<Item = u16> + 'a {
        let b = self.bytes;
        let at = self.deps_off + m.deps_start as usize * 2;
        (0..m.deps_count as usize)
            .map(move |i| u16::from_le_bytes([b[at + 2 * i], b[at + 2 * i + 1]]))
    }

    /// The relocation records of a module (`None` for an undecodable record;
    /// [`Table::parse`] has already rejected those).
    pub fn relocs(&self, m: &ModuleRecord) -> impl Iterator<Item = Option<RelocRecord>> + 'a {
        let b = self.bytes;
        let at = self.relocs_off + m.relocs_start as usize * RELOC_RECORD_SIZE;
        (0..m.relocs_count as usize).map(move |i| {
            let s = at + i * RELOC_RECORD_SIZE;
            RelocRecord::from_bytes(&b[s..s + RELOC_RECORD_SIZE])
        })
    }

    /// Size of the table in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// Everything the writer needs to know about one module.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleEntry {
    /// Module name.
    pub name: alloc::string::String,
    /// Indices of the modules it depends on (all smaller than its own index).
    pub deps: alloc::vec::Vec<u16>,
    /// Offset of each slot inside its region.
    pub slot_off: PerClass<u32>,
    /// Size reserved for each slot.
    pub slot_size: PerClass<u32>,
    /// Bytes used in each class.
    pub size: PerClass<u32>,
    /// Largest section alignment in each class.
    pub align: PerClass<u32>,
    /// Bytes at the end of the data class that are bss.
    pub bss_size: u32,
    /// Offset of the probe inside the text slot.
    pub probe_off: u32,
    /// Offset of the self-test inside the text slot, if any.
    pub selftest_off: Option<u32>,
    /// Checksum of the used slot bytes.
    pub checksum: u64,
    /// Relocations to redo when the module moves.
    pub relocs: alloc::vec::Vec<RelocRecord>,
}

/// Serialises a module table.
#[cfg(feature = "alloc")]
pub fn build(header: &Header, modules: &[ModuleEntry]) -> alloc::vec::Vec<u8> {
    use alloc::vec::Vec;
    let n = modules.len();
    let relocs_count: usize = modules.iter().map(|m| m.relocs.len()).sum();
    let deps_count: usize = modules.iter().map(|m| m.deps.len()).sum();
    let modules_off = HEADER_SIZE;
    let relocs_off = modules_off + n * MODULE_RECORD_SIZE;
    let deps_off = relocs_off + relocs_count * RELOC_RECORD_SIZE;
    let strings_off = deps_off + deps_count * 2;
    let mut records = Vec::with_capacity(n * MODULE_RECORD_SIZE);
    let mut relocs = Vec::with_capacity(relocs_count * RELOC_RECORD_SIZE);
    let mut deps = Vec::with_capacity(deps_count * 2);
    let mut strings = Vec::new();
    let (mut reloc_i, mut dep_i) = (0u32, 0u32);
    for m in modules {
        let rec = ModuleRecord {
            name_off: strings.len() as u32,
            name_len: m.name.len() as u32,
            deps_start: dep_i,
            deps_count: m.deps.len() as u32,
            slot_off: m.slot_off,
            slot_size: m.slot_size,
            size: m.size,
            align: m.align,
            bss_size: m.bss_size,
            probe_off: m.probe_off,
            selftest_off: m.selftest_off.unwrap_or(NO_ENTRY),
            relocs_start: reloc_i,
            relocs_count: m.relocs.len() as u32,
            flags: 0,
            checksum: m.checksum,
        };
        strings.extend_from_slice(m.name.as_bytes());
        for d in &m.deps {
            deps.extend_from_slice(&d.to_le_bytes());
        }
        for r in &m.relocs {
            relocs.extend_from_slice(&r.to_bytes());
        }
        records.extend_from_slice(&rec.to_bytes());
        reloc_i += m.relocs.len() as u32;
        dep_i += m.deps.len() as u32;
    }
    let table_size = strings_off + strings.len();
    let mut out = Vec::with_capacity(table_size);
    out.extend_from_slice(&MAGIC);
    for w in [VERSION, n as u32, header.slot_align, table_size as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for v in header
        .region_base
        .0
        .iter()
        .chain(header.region_size.0.iter())
    {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for w in [
        modules_off as u32,
        relocs_off as u32,
        relocs_count as u32,
        deps_off as u32,
        deps_count as u32,
        strings_off as u32,
        strings.len() as u32,
        0,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&[0u8; 8]);
    debug_assert_eq!(out.len(), HEADER_SIZE);
    out.extend_from_slice(&records);
    out.extend_from_slice(&relocs);
    out.extend_from_slice(&deps);
    out.extend_from_slice(&strings);
    let sum = table_checksum(&out);
    out[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    out
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn header() -> Header {
        Header {
            module_count: 0,
            slot_align: 4096,
            region_base: PerClass([
                0xffff_ffff_8040_0000,
                0xffff_ffff_80c0_0000,
                0xffff_ffff_8140_0000,
            ]),
            region_size: PerClass([2 << 20; 3]),
        }
    }

    fn entry(name: &str, deps: &[u16], off: u32) -> ModuleEntry {
        ModuleEntry {
            name: name.to_string(),
            deps: deps.to_vec(),
            slot_off: PerClass([off; 3]),
            slot_size: PerClass([4096; 3]),
            size: PerClass([100, 50, 24]),
            align: PerClass([16, 8, 8]),
            bss_size: 8,
            probe_off: 4,
            selftest_off: None,
            checksum: 0x1234,
            relocs: vec![
                RelocRecord {
                    place_off: 8,
                    place_class: Class::Text,
                    kind: RelocKind::Pc32,
                    target: Target::Module {
                        module: 0,
                        class: Class::Rodata,
                    },
                    addend: -4,
                },
                RelocRecord {
                    place_off: 0,
                    place_class: Class::Data,
                    kind: RelocKind::Abs64,
                    target: Target::Absolute,
                    addend: 0xffff_ffff_8020_1000u64 as i64,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let mods = vec![entry("pci", &[], 0), entry("e1000", &[0], 4096)];
        let bytes = build(&header(), &mods);
        let t = Table::parse(&bytes).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.header().slot_align, 4096);
        let m1 = t.module(1);
        assert_eq!(t.name(&m1), "e1000");
        assert_eq!(t.deps(&m1).collect::<vec::Vec<_>>(), vec![0]);
        assert_eq!(m1.slot_off, PerClass([4096; 3]));
        assert_eq!(m1.selftest_off, NO_ENTRY);
        let relocs: vec::Vec<_> = t.relocs(&m1).map(Option::unwrap).collect();
        assert_eq!(relocs, mods[1].relocs);
        // Trailing bytes of the reserved area are ignored.
        let mut area = bytes.clone();
        area.resize(bytes.len() + 4096, 0);
        assert_eq!(Table::parse(&area).unwrap().len(), 2);
    }

    #[test]
    fn corruption_is_detected() {
        let bytes = build(&header(), &[entry("pci", &[], 0)]);
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            Table::parse(&bad),
            Err(TableError::Checksum { .. })
        ));
        assert_eq!(Table::parse(&[0u8; 256]).unwrap_err(), TableError::NoMagic);
        assert_eq!(
            Table::parse(&bytes[..bytes.len() - 1]).unwrap_err(),
            TableError::OutOfBounds("table size")
        );
    }

    #[test]
    fn forward_dependency_is_rejected() {
        let bytes = build(&header(), &[entry("a", &[1], 0), entry("b", &[], 4096)]);
        assert_eq!(
            Table::parse(&bytes).unwrap_err(),
            TableError::BadModule {
                index: 0,
                what: "dependency is not an earlier module"
            }
        );
    }
}
