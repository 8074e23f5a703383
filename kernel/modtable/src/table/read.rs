//! Reading a table: [`Table::parse`] checks every offset, count, record and
//! the checksum once; the accessors then read the records in place.

use super::format::{
    CHECKSUM_AT, GROUP_RECORD_SIZE, HEADER_SIZE, Header, MAGIC, MODULE_RECORD_SIZE, ModuleRecord,
    RelocField, RelocGroup, Target, VERSION, decode_target, table_checksum, u32_at, u64_at,
};
use crate::{Class, PerClass, RelocKind};
use core::fmt;

/// Why a table could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The area does not start with [`MAGIC`] (the image was not prelinked,
    /// or the table's first bytes are corrupt).
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
            TableError::NoMagic => write!(
                f,
                "no module table (the image was not prelinked, or the table's first bytes are corrupt)"
            ),
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
        let bad = |what| TableError::BadModule { index, what };
        let m = ModuleRecord::from_bytes(self.record_bytes(index as usize)).map_err(bad)?;
        let l = &m.placement;
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
            if l.size[c] > l.slot_size[c] {
                return Err(bad("size larger than slot"));
            }
            let end = l.slot_off[c] as u64 + l.slot_size[c] as u64;
            if end > self.header.region_size[c] {
                return Err(bad("slot outside its region"));
            }
            if !l.align[c].is_power_of_two() {
                return Err(bad("alignment is not a power of two"));
            }
            if l.size[c] > 0
                && !(self.header.region_base[c] + l.slot_off[c] as u64)
                    .is_multiple_of(l.align[c] as u64)
            {
                return Err(bad("slot address not aligned for its class"));
            }
        }
        if l.bss_size > l.size[Class::Data] {
            return Err(bad("bss larger than data"));
        }
        if l.percpu_size > 0
            && (!l.percpu_off.is_multiple_of(64)
                || l.percpu_off as u64 + l.percpu_size as u64
                    > (l.size[Class::Data] - l.bss_size) as u64)
        {
            return Err(bad("per-CPU template outside data"));
        }
        if l.probe_off >= l.size[Class::Text] {
            return Err(bad("probe entry outside text"));
        }
        if l.selftest_off.is_some_and(|o| o >= l.size[Class::Text]) {
            return Err(bad("selftest entry outside text"));
        }
        for g in self.groups(&m) {
            let g = g.ok_or(bad("invalid relocation group"))?;
            let limit = l.size[g.place_class] as u64;
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

    fn record_bytes(&self, i: usize) -> &'a [u8] {
        let at = self.modules_off + i * MODULE_RECORD_SIZE;
        &self.bytes[at..at + MODULE_RECORD_SIZE]
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
        ModuleRecord::from_bytes(self.record_bytes(i)).expect("records are checked by parse")
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

    /// Size of the table in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}
