//! Binary layout of the module table in the image's `.modtable` section.
//!
//! All integers are little-endian. Layout:
//!
//! ```text
//! header        HEADER_SIZE bytes
//! modules       module_count × MODULE_RECORD_SIZE
//! groups        groups_count × GROUP_RECORD_SIZE (each module owns a run)
//! offsets       offsets_count × u32 (each group owns a run)
//! deps          deps_count × u16 (module indices; each module owns a run)
//! strings       strings_len bytes (module names, UTF-8, not NUL-terminated)
//! ```
//!
//! Modules appear in slot order, which is also probe order: every module's
//! dependencies have smaller indices. The table only records relocated
//! fields whose value can change when modules move, grouped by what moves
//! them: a group is a relocation kind, the class holding the fields, and
//! their target (a class of some module, or an absolute address), followed
//! by the offsets of its fields in this module's slot of that class. Every
//! field of a group changes by the same amount when modules move
//! ([`Table::redo`]): the target's displacement, minus the place's for a
//! PC-relative kind. The fields' bytes as prelinked carry the rest, so no
//! addend is stored.
//!
//! The header carries a checksum of the whole table
//! ([`crate::checksum::Wide`], eight FNV-1a lanes over 64-bit words,
//! computed with the checksum field zeroed), so a table the kernel reads is
//! the one the prelinker wrote.

use crate::checksum::Wide;
use crate::{Class, PerClass, RelocKind};
use core::fmt;

/// Magic bytes at the start of a module table.
pub const MAGIC: [u8; 8] = *b"PLMODTAB";
/// Table format version (6: module records carry the per-CPU template's
/// offset and size in data; 5: module and table checksums are the eight-lane
/// [`crate::checksum::Wide`]; 4: module records carry the prelinker's
/// prediction in `flags`; 3: the table checksum is over 64-bit words).
pub const VERSION: u32 = 6;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 120;
/// Size of one module record in bytes.
pub const MODULE_RECORD_SIZE: usize = 104;
/// Size of one relocation group record in bytes.
pub const GROUP_RECORD_SIZE: usize = 16;
/// `probe_off`/`selftest_off` value meaning "no such entry point".
pub const NO_ENTRY: u32 = u32::MAX;
const TARGET_ABSOLUTE: u8 = 3;
/// `flags` bit: the prelinker expected this module to be kept.
pub const FLAG_PREDICTED_KEPT: u32 = 1 << 0;
/// `flags` bit: the prelinker expected this module to be expunged.
pub const FLAG_PREDICTED_EXPUNGED: u32 = 1 << 1;

/// What the prelinker expected of a module (from `link --expect`), which
/// decided its slot: expected-kept modules first, expected failures last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// Expected to be kept.
    Kept,
    /// Expected to be expunged.
    Expunged,
}

impl Prediction {
    /// The report name: `kept` or `expunged`.
    pub fn name(self) -> &'static str {
        match self {
            Prediction::Kept => "kept",
            Prediction::Expunged => "expunged",
        }
    }

    /// The `flags` bits of a prediction.
    pub fn flags(p: Option<Prediction>) -> u32 {
        match p {
            None => 0,
            Some(Prediction::Kept) => FLAG_PREDICTED_KEPT,
            Some(Prediction::Expunged) => FLAG_PREDICTED_EXPUNGED,
        }
    }
}
const CHECKSUM_AT: usize = 112;

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

/// One relocation the kernel redoes when a module moves, as the prelinker
/// gives it to [`build`] (the addend is not stored: see the module docs).
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
    /// The stored part of the record.
    pub fn field(&self) -> RelocField {
        RelocField {
            place_off: self.place_off,
            place_class: self.place_class,
            kind: self.kind,
            target: self.target,
        }
    }
}

/// A relocated field as the table stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelocField {
    /// Offset of the field inside this module's slot of `place_class`.
    pub place_off: u32,
    /// Class holding the field.
    pub place_class: Class,
    /// How the field is computed.
    pub kind: RelocKind,
    /// What the field refers to.
    pub target: Target,
}

/// Fields that move together: same kind, same place class, same target.
#[derive(Clone, Copy, Debug)]
pub struct RelocGroup<'a> {
    /// How the fields are computed.
    pub kind: RelocKind,
    /// Class holding the fields.
    pub place_class: Class,
    /// What the fields refer to.
    pub target: Target,
    offsets: &'a [u8],
}

impl<'a> RelocGroup<'a> {
    /// Offsets of the fields in this module's slot of `place_class`.
    pub fn offsets(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.offsets
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.offsets.len() / 4
    }

    /// Whether the group has no fields.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

#[cfg(feature = "alloc")]
fn encode_target(t: Target) -> (u8, u16) {
    match t {
        Target::Absolute => (TARGET_ABSOLUTE, 0),
        Target::Module { module, class } => (class as u8, module),
    }
}

fn decode_target(tclass: u8, module: u16) -> Option<Target> {
    if tclass == TARGET_ABSOLUTE {
        return Some(Target::Absolute);
    }
    Some(Target::Module {
        module,
        class: Class::from_index(tclass as u32)?,
    })
}

/// Why [`Table::redo`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedoError {
    /// Fields refer to a module whose displacement is unknown (not kept).
    Target(u16),
    /// A field could not be adjusted.
    Field {
        /// Class holding the field.
        class: Class,
        /// Offset of the field.
        offset: u32,
        /// What went wrong.
        err: crate::RelocError,
    },
}

impl fmt::Display for RedoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedoError::Target(m) => {
                write!(f, "relocations refer to module {m}, which was not kept")
            }
            RedoError::Field { class, offset, err } => {
                write!(f, "field at {}+{offset:#x}: {err}", class.name())
            }
        }
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
    /// Index of the module's first relocation group.
    pub groups_start: u32,
    /// Number of relocation groups.
    pub groups_count: u32,
    /// [`FLAG_PREDICTED_KEPT`] or [`FLAG_PREDICTED_EXPUNGED`] (or neither);
    /// the other bits are zero.
    pub flags: u32,
    /// [`crate::checksum::module_checksum`] of the used slot bytes as prelinked.
    pub checksum: u64,
    /// Offset of the per-CPU template (the module's `.percpu*` sections)
    /// inside the data class: 64-byte aligned, just before bss.
    pub percpu_off: u32,
    /// Bytes of the per-CPU template (0: the module has no per-CPU data).
    pub percpu_size: u32,
}

impl ModuleRecord {
    /// The prelinker's prediction for this module, if it had one.
    pub fn predicted(&self) -> Option<Prediction> {
        match self.flags & (FLAG_PREDICTED_KEPT | FLAG_PREDICTED_EXPUNGED) {
            FLAG_PREDICTED_KEPT => Some(Prediction::Kept),
            FLAG_PREDICTED_EXPUNGED => Some(Prediction::Expunged),
            _ => None,
        }
    }

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
        words[19] = self.groups_start;
        words[20] = self.groups_count;
        words[21] = self.flags;
        let mut b = [0u8; MODULE_RECORD_SIZE];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b[88..96].copy_from_slice(&self.checksum.to_le_bytes());
        b[96..100].copy_from_slice(&self.percpu_off.to_le_bytes());
        b[100..104].copy_from_slice(&self.percpu_size.to_le_bytes());
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
            groups_start: w(19),
            groups_count: w(20),
            flags: w(21),
            checksum: u64_at(b, 88),
            percpu_off: u32_at(b, 96),
            percpu_size: u32_at(b, 100),
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
    groups_off: usize,
    groups_count: usize,
    offsets_off: usize,
    offsets_count: usize,
    deps_off: usize,
    deps_count: usize,
    strings_off: usize,
    strings_len: usize,
}

/// The checksum the header of the table `bytes` (exactly the table, its
/// checksum field ignored) must carry.
pub fn checksum_of(bytes: &[u8]) -> u64 {
    table_checksum(bytes)
}

fn table_checksum(bytes: &[u8]) -> u64 {
    let mut h = Wide::default();
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
        let groups_count = u32_at(bytes, 80);
        let (groups_off, _) = span(
            u32_at(bytes, 76),
            groups_count,
            GROUP_RECORD_SIZE,
            table_size,
            "relocation groups",
        )?;
        let offsets_count = u32_at(bytes, 104);
        let (offsets_off, _) = span(
            u32_at(bytes, 100),
            offsets_count,
            4,
            table_size,
            "relocation offsets",
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
            groups_off,
            groups_count: groups_count as usize,
            offsets_off,
            offsets_count: offsets_count as usize,
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
        if m.groups_start as usize + m.groups_count as usize > self.groups_count {
            return Err(bad("relocation groups out of bounds"));
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
        if m.flags & !(FLAG_PREDICTED_KEPT | FLAG_PREDICTED_EXPUNGED) != 0
            || m.flags == FLAG_PREDICTED_KEPT | FLAG_PREDICTED_EXPUNGED
        {
            return Err(bad("unknown flags"));
        }
        if m.bss_size > m.size[Class::Data] {
            return Err(bad("bss larger than data"));
        }
        if m.percpu_size > 0
            && (!m.percpu_off.is_multiple_of(64)
                || m.percpu_off as u64 + m.percpu_size as u64
                    > (m.size[Class::Data] - m.bss_size) as u64)
        {
            return Err(bad("per-CPU template outside data"));
        }
        if m.probe_off >= m.size[Class::Text] {
            return Err(bad("probe entry outside text"));
        }
        if m.selftest_off != NO_ENTRY && m.selftest_off >= m.size[Class::Text] {
            return Err(bad("selftest entry outside text"));
        }
        for g in self.groups(&m) {
            let g = g.ok_or(bad("invalid relocation group"))?;
            let limit = m.size[g.place_class] as u64;
            if g.offsets()
                .any(|o| o as u64 + g.kind.width() as u64 > limit)
            {
                return Err(bad("relocation outside its class"));
            }
            if let Target::Module { module, .. } = g.target
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

    /// The relocation groups of a module (`None` for an undecodable group;
    /// [`Table::parse`] has already rejected those).
    pub fn groups(&self, m: &ModuleRecord) -> impl Iterator<Item = Option<RelocGroup<'a>>> + 'a {
        let (b, offsets_off, offsets_count) = (self.bytes, self.offsets_off, self.offsets_count);
        let at = self.groups_off + m.groups_start as usize * GROUP_RECORD_SIZE;
        (0..m.groups_count as usize).map(move |i| {
            let g = &b[at + i * GROUP_RECORD_SIZE..at + (i + 1) * GROUP_RECORD_SIZE];
            let first = u32_at(g, 8) as usize;
            let count = u32_at(g, 12) as usize;
            if first.checked_add(count)? > offsets_count {
                return None;
            }
            Some(RelocGroup {
                kind: RelocKind::from_u8(g[0])?,
                place_class: Class::from_index(g[1] as u32)?,
                target: decode_target(g[2], u16::from_le_bytes([g[4], g[5]]))?,
                offsets: &b[offsets_off + first * 4..offsets_off + (first + count) * 4],
            })
        })
    }

    /// Every recorded field of a module, group by group.
    pub fn fields(&self, m: &ModuleRecord) -> impl Iterator<Item = RelocField> + 'a {
        self.groups(m).flatten().flat_map(|g| {
            g.offsets().map(move |place_off| RelocField {
                place_off,
                place_class: g.place_class,
                kind: g.kind,
                target: g.target,
            })
        })
    }

    /// Number of recorded fields of a module.
    pub fn field_count(&self, m: &ModuleRecord) -> usize {
        self.groups(m).flatten().map(|g| g.len()).sum()
    }

    /// Redoes the relocations of module `index` after modules moved.
    /// `bytes[c]` holds the module's class `c` at its new address as
    /// prelinked (moved, not yet adjusted); `moved(m, c)` says how far class
    /// `c` of module `m` moved (new address minus slot address, two's
    /// complement), or `None` if module `m` was not kept. Groups whose
    /// fields do not change are skipped. Returns the number of fields
    /// rewritten.
    pub fn redo(
        &self,
        index: usize,
        bytes: &mut PerClass<&mut [u8]>,
        moved: impl Fn(u16, Class) -> Option<i64>,
    ) -> Result<u32, RedoError> {
        let m = self.module(index);
        let me = index as u16;
        let mut rewritten = 0;
        for g in self.groups(&m).flatten() {
            let target = match g.target {
                Target::Absolute => 0,
                Target::Module { module, class } => {
                    moved(module, class).ok_or(RedoError::Target(module))?
                }
            };
            let delta = if g.kind.is_pc_relative() {
                let place = moved(me, g.place_class).ok_or(RedoError::Target(me))?;
                target.wrapping_sub(place)
            } else {
                target
            };
            if delta == 0 {
                continue;
            }
            let buf = &mut *bytes[g.place_class];
            rewritten += crate::reloc::adjust_all(g.kind, buf, g.offsets(), delta).map_err(
                |(offset, err)| RedoError::Field {
                    class: g.place_class,
                    offset,
                    err,
                },
            )?;
        }
        Ok(rewritten)
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
    /// Offset and size of the per-CPU template inside data (`(0, 0)`: none).
    pub percpu: (u32, u32),
    /// Offset of the probe inside the text slot.
    pub probe_off: u32,
    /// Offset of the self-test inside the text slot, if any.
    pub selftest_off: Option<u32>,
    /// Checksum of the used slot bytes.
    pub checksum: u64,
    /// What the prelinker expected of the module, if anything.
    pub predicted: Option<Prediction>,
    /// Fields to redo when the module moves.
    pub relocs: RelocGroups,
}

/// A module's relocated fields, grouped as the table stores them: by target
/// (class, module), place class and kind, in that order, with each group's
/// offsets sorted. Grouping is per module, so a writer may do it for many
/// modules in parallel before [`build`].
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelocGroups {
    /// Each group's key (target class, target module, place class, kind,
    /// packed in that order of significance) and number of offsets.
    groups: alloc::vec::Vec<(u64, u32)>,
    /// The offsets, group after group.
    offsets: alloc::vec::Vec<u32>,
}

#[cfg(feature = "alloc")]
impl RelocGroups {
    /// Groups `fields`.
    pub fn new(fields: impl IntoIterator<Item = RelocField>) -> RelocGroups {
        let mut v: alloc::vec::Vec<(u64, u32)> = fields
            .into_iter()
            .map(|f| {
                let (tclass, tmod) = encode_target(f.target);
                let key = (tclass as u64) << 32
                    | (tmod as u64) << 16
                    | (f.place_class as u64) << 8
                    | f.kind as u64;
                (key, f.place_off)
            })
            .collect();
        v.sort_unstable();
        let mut g = RelocGroups {
            groups: alloc::vec::Vec::new(),
            offsets: alloc::vec::Vec::with_capacity(v.len()),
        };
        for (key, off) in v {
            match g.groups.last_mut() {
                Some((k, n)) if *k == key => *n += 1,
                _ => g.groups.push((key, 1)),
            }
            g.offsets.push(off);
        }
        g
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// Serialises a module table.
#[cfg(feature = "alloc")]
pub fn build(header: &Header, modules: &[ModuleEntry]) -> alloc::vec::Vec<u8> {
    let n = modules.len();
    let groups_count: usize = modules.iter().map(|m| m.relocs.groups.len()).sum();
    let offsets_count: usize = modules.iter().map(|m| m.relocs.len()).sum();
    let deps_count: usize = modules.iter().map(|m| m.deps.len()).sum();
    let modules_off = HEADER_SIZE;
    let groups_off = modules_off + n * MODULE_RECORD_SIZE;
    let offsets_off = groups_off + groups_count * GROUP_RECORD_SIZE;
    let deps_off = offsets_off + offsets_count * 4;
    let strings_off = deps_off + deps_count * 2;
    let strings_len: usize = modules.iter().map(|m| m.name.len()).sum();
    let table_size = strings_off + strings_len;
    // Every part is written in place into one buffer of the final size.
    let mut out = alloc::vec![0u8; table_size];
    let put32 =
        |out: &mut [u8], at: usize, w: u32| out[at..at + 4].copy_from_slice(&w.to_le_bytes());
    out[..8].copy_from_slice(&MAGIC);
    for (i, w) in [VERSION, n as u32, header.slot_align, table_size as u32]
        .into_iter()
        .enumerate()
    {
        put32(&mut out, 8 + 4 * i, w);
    }
    for (i, v) in header
        .region_base
        .0
        .iter()
        .chain(header.region_size.0.iter())
        .enumerate()
    {
        out[24 + 8 * i..32 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    for (i, w) in [
        modules_off as u32,
        groups_off as u32,
        groups_count as u32,
        deps_off as u32,
        deps_count as u32,
        strings_off as u32,
        strings_len as u32,
        offsets_off as u32,
        offsets_count as u32,
        0,
    ]
    .into_iter()
    .enumerate()
    {
        put32(&mut out, 72 + 4 * i, w);
    }
    debug_assert_eq!(72 + 40 + 8, HEADER_SIZE);
    let (mut group_i, mut offset_i, mut dep_i, mut string_i) = (0usize, 0usize, 0usize, 0usize);
    for (mi, m) in modules.iter().enumerate() {
        let g = &m.relocs;
        let rec = ModuleRecord {
            name_off: string_i as u32,
            name_len: m.name.len() as u32,
            deps_start: dep_i as u32,
            deps_count: m.deps.len() as u32,
            slot_off: m.slot_off,
            slot_size: m.slot_size,
            size: m.size,
            align: m.align,
            bss_size: m.bss_size,
            probe_off: m.probe_off,
            selftest_off: m.selftest_off.unwrap_or(NO_ENTRY),
            groups_start: group_i as u32,
            groups_count: g.groups.len() as u32,
            flags: Prediction::flags(m.predicted),
            checksum: m.checksum,
            percpu_off: m.percpu.0,
            percpu_size: m.percpu.1,
        };
        let at = modules_off + mi * MODULE_RECORD_SIZE;
        out[at..at + MODULE_RECORD_SIZE].copy_from_slice(&rec.to_bytes());
        let at = strings_off + string_i;
        out[at..at + m.name.len()].copy_from_slice(m.name.as_bytes());
        string_i += m.name.len();
        for d in &m.deps {
            let at = deps_off + 2 * dep_i;
            out[at..at + 2].copy_from_slice(&d.to_le_bytes());
            dep_i += 1;
        }
        let mut from = 0usize;
        for &(key, count) in &g.groups {
            let gr = &mut out[groups_off + group_i * GROUP_RECORD_SIZE..][..GROUP_RECORD_SIZE];
            gr[0] = key as u8;
            gr[1] = (key >> 8) as u8;
            gr[2] = (key >> 32) as u8;
            gr[4..6].copy_from_slice(&((key >> 16) as u16).to_le_bytes());
            gr[8..12].copy_from_slice(&(offset_i as u32).to_le_bytes());
            gr[12..16].copy_from_slice(&count.to_le_bytes());
            group_i += 1;
            let dst = &mut out[offsets_off + 4 * offset_i..][..4 * count as usize];
            for (d, o) in dst
                .chunks_exact_mut(4)
                .zip(&g.offsets[from..from + count as usize])
            {
                d.copy_from_slice(&o.to_le_bytes());
            }
            from += count as usize;
            offset_i += count as usize;
        }
    }
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

    fn records() -> vec::Vec<RelocRecord> {
        vec![
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
        ]
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
            percpu: (0, 0),
            probe_off: 4,
            selftest_off: None,
            checksum: 0x1234,
            predicted: None,
            relocs: RelocGroups::new(records().iter().map(RelocRecord::field)),
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
        let fields: vec::Vec<RelocField> = t.fields(&m1).collect();
        assert_eq!(fields.len(), mods[1].relocs.len());
        for r in &records() {
            assert!(fields.contains(&r.field()), "{r:?} missing");
        }
        assert_eq!(t.field_count(&m1), 2);
        // Trailing bytes of the reserved area are ignored.
        let mut area = bytes.clone();
        area.resize(bytes.len() + 4096, 0);
        assert_eq!(Table::parse(&area).unwrap().len(), 2);
    }

    #[test]
    fn redo_after_moving_equals_relocating_at_the_new_addresses() {
        use crate::reloc::{apply, decode};
        let h = header();
        let base = h.region_base;
        // Module 0 (at slot offset 0) and module 1 (at 4096): module 1's text
        // holds a PC32 to its own rodata, a PC32 to module 0's text, an abs64
        // (in data) to its own text, and a PC32 to an absolute address.
        let m = |name: &str, off: u32, relocs: vec::Vec<RelocRecord>| ModuleEntry {
            name: name.to_string(),
            deps: vec::Vec::new(),
            slot_off: PerClass([off; 3]),
            slot_size: PerClass([4096; 3]),
            size: PerClass([64, 64, 64]),
            align: PerClass([16, 8, 8]),
            bss_size: 0,
            percpu: (0, 0),
            probe_off: 0,
            selftest_off: None,
            checksum: 0,
            predicted: None,
            relocs: RelocGroups::new(relocs.iter().map(RelocRecord::field)),
        };
        let rec = |place_class, place_off, kind, target, addend| RelocRecord {
            place_off,
            place_class,
            kind,
            target,
            addend,
        };
        let own = |class| Target::Module { module: 1, class };
        let relocs = vec![
            rec(Class::Text, 4, RelocKind::Pc32, own(Class::Rodata), 0x10),
            rec(
                Class::Text,
                12,
                RelocKind::Pc32,
                Target::Module {
                    module: 0,
                    class: Class::Text,
                },
                8,
            ),
            rec(Class::Data, 0, RelocKind::Abs64, own(Class::Text), 0x20),
            rec(
                Class::Text,
                20,
                RelocKind::Pc32,
                Target::Absolute,
                0xffff_ffff_8020_0000u64 as i64,
            ),
        ];
        let bytes = build(
            &h,
            &[m("a", 0, vec::Vec::new()), m("b", 4096, relocs.clone())],
        );
        let t = Table::parse(&bytes).unwrap();
        // Fields applied at the slots, as the prelinker does.
        let slot = |module: u16, c: Class| base[c] + 4096 * module as u64;
        let target_at = |r: &RelocRecord, at: &dyn Fn(u16, Class) -> u64| match r.target {
            Target::Absolute => r.addend as u64,
            Target::Module { module, class } => at(module, class).wrapping_add(r.addend as u64),
        };
        let mut cls = [[0u8; 64]; 3];
        for r in &relocs {
            let c = r.place_class;
            apply(
                r.kind,
                &mut cls[c.index()],
                slot(1, c),
                r.place_off as usize,
                target_at(r, &slot),
            )
            .unwrap();
        }
        // Both modules move down by different amounts per class.
        let new = |module: u16, c: Class| {
            slot(module, c)
                - [0x1000, 0xf00, 0xf80][c.index()]
                - module as u64 * 0x40 * (c.index() as u64 + 1)
        };
        let [t0, t1, t2] = &mut cls;
        let mut view = PerClass([&mut t0[..], &mut t1[..], &mut t2[..]]);
        let n = t
            .redo(1, &mut view, |module, c| {
                Some(new(module, c).wrapping_sub(slot(module, c)) as i64)
            })
            .unwrap();
        assert_eq!(n, 4);
        for r in &relocs {
            let c = r.place_class;
            let got = decode(r.kind, &cls[c.index()], new(1, c), r.place_off as usize).unwrap();
            assert_eq!(got, target_at(r, &new), "{r:?}");
        }
        // A target that was not kept is an error.
        let [t0, t1, t2] = &mut cls;
        let mut view = PerClass([&mut t0[..], &mut t1[..], &mut t2[..]]);
        let e = t
            .redo(1, &mut view, |module, _| (module == 1).then_some(-64))
            .unwrap_err();
        assert_eq!(e, RedoError::Target(0));
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
