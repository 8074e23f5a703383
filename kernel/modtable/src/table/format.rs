//! The table's binary format: constants, the header, module and relocation
//! records, and the table checksum.

use crate::checksum::Wide;
use crate::{Class, PerClass, RelocKind};

/// Magic bytes at the start of a module table.
pub const MAGIC: [u8; 8] = *b"PLMODTAB";
/// Table format version (8: module and table checksums are sixteen lanes
/// of two words per step, run on SSE2, see [`crate::checksum::Wide`]; 7:
/// module and table checksums take two words per multiply; 6: module records carry the per-CPU template's
/// offset and size in data; 5: module and table checksums are the eight-lane
/// [`crate::checksum::Wide`]; 4: module records carry the prelinker's
/// prediction in `flags`; 3: the table checksum is over 64-bit words).
pub const VERSION: u32 = 8;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 120;
/// Size of one module record in bytes.
pub const MODULE_RECORD_SIZE: usize = 104;
/// Size of one relocation group record in bytes.
pub const GROUP_RECORD_SIZE: usize = 16;
/// `probe_off`/`selftest_off` value meaning "no such entry point".
pub const NO_ENTRY: u32 = u32::MAX;
/// The target class byte of an absolute target.
pub(super) const TARGET_ABSOLUTE: u8 = 3;
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

/// Where the table checksum lies in the header.
pub(super) const CHECKSUM_AT: usize = 112;

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
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
    pub(super) offsets: &'a [u8],
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
pub(super) fn encode_target(t: Target) -> (u8, u16) {
    match t {
        Target::Absolute => (TARGET_ABSOLUTE, 0),
        Target::Module { module, class } => (class as u8, module),
    }
}

pub(super) fn decode_target(tclass: u8, module: u16) -> Option<Target> {
    if tclass == TARGET_ABSOLUTE {
        return Some(Target::Absolute);
    }
    Some(Target::Module {
        module,
        class: Class::from_index(tclass as u32)?,
    })
}

/// Where the prelinker placed a module and what the kernel checks of it:
/// its slots, the bytes it uses in them, its entry points, its checksum and
/// the prediction. This is the one module record: the table stores it in each
/// [`ModuleRecord`], the writer takes it in a
/// [`ModuleEntry`](super::ModuleEntry), the prelinker's plan and the
/// kernel's module state carry it as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
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
    /// Offset of the per-CPU template (the module's `.percpu*` sections)
    /// inside the data class: 64-byte aligned, just before bss.
    pub percpu_off: u32,
    /// Bytes of the per-CPU template (0: the module has no per-CPU data).
    pub percpu_size: u32,
    /// Offset of the probe entry inside the text slot.
    pub probe_off: u32,
    /// Offset of the self-test entry inside the text slot, if it has one.
    pub selftest_off: Option<u32>,
    /// [`crate::checksum::module_checksum`] of the used slot bytes as prelinked.
    pub checksum: u64,
    /// What the prelinker expected of the module (`link --expect`), if anything.
    pub predicted: Option<Prediction>,
}

/// One module's record as the table stores it: its [`Placement`], and
/// where its name, dependencies and relocation groups lie in the table.
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
    /// Index of the module's first relocation group.
    pub groups_start: u32,
    /// Number of relocation groups.
    pub groups_count: u32,
    /// Slots, sizes, entry points, checksum and prediction.
    pub placement: Placement,
}

impl ModuleRecord {
    /// Encodes the record: 22 words (name, deps, slot offsets, slot sizes,
    /// sizes, alignments, bss, probe, self-test or [`NO_ENTRY`], groups,
    /// flags), the checksum, the per-CPU offset and size.
    pub fn to_bytes(&self) -> [u8; MODULE_RECORD_SIZE] {
        let l = &self.placement;
        let mut words = [0u32; 22];
        words[0] = self.name_off;
        words[1] = self.name_len;
        words[2] = self.deps_start;
        words[3] = self.deps_count;
        words[4..7].copy_from_slice(&l.slot_off.0);
        words[7..10].copy_from_slice(&l.slot_size.0);
        words[10..13].copy_from_slice(&l.size.0);
        words[13..16].copy_from_slice(&l.align.0);
        words[16] = l.bss_size;
        words[17] = l.probe_off;
        words[18] = l.selftest_off.unwrap_or(NO_ENTRY);
        words[19] = self.groups_start;
        words[20] = self.groups_count;
        words[21] = Prediction::flags(l.predicted);
        let mut b = [0u8; MODULE_RECORD_SIZE];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b[88..96].copy_from_slice(&l.checksum.to_le_bytes());
        b[96..100].copy_from_slice(&l.percpu_off.to_le_bytes());
        b[100..104].copy_from_slice(&l.percpu_size.to_le_bytes());
        b
    }

    /// Decodes a record of [`MODULE_RECORD_SIZE`] bytes; fails on flag
    /// bits this version does not define.
    pub fn from_bytes(b: &[u8]) -> Result<ModuleRecord, &'static str> {
        let w = |i: usize| u32_at(b, i * 4);
        let pc = |i: usize| PerClass([w(i), w(i + 1), w(i + 2)]);
        let predicted = match w(21) {
            0 => None,
            FLAG_PREDICTED_KEPT => Some(Prediction::Kept),
            FLAG_PREDICTED_EXPUNGED => Some(Prediction::Expunged),
            _ => return Err("unknown flags"),
        };
        Ok(ModuleRecord {
            name_off: w(0),
            name_len: w(1),
            deps_start: w(2),
            deps_count: w(3),
            groups_start: w(19),
            groups_count: w(20),
            placement: Placement {
                slot_off: pc(4),
                slot_size: pc(7),
                size: pc(10),
                align: pc(13),
                bss_size: w(16),
                probe_off: w(17),
                selftest_off: Some(w(18)).filter(|&o| o != NO_ENTRY),
                checksum: u64_at(b, 88),
                percpu_off: u32_at(b, 96),
                percpu_size: u32_at(b, 100),
                predicted,
            },
        })
    }
}

/// The checksum the header of the table `bytes` (exactly the table, its
/// checksum field ignored) must carry.
pub fn checksum_of(bytes: &[u8]) -> u64 {
    table_checksum(bytes)
}

pub(super) fn table_checksum(bytes: &[u8]) -> u64 {
    let mut h = Wide::default();
    h.update(&bytes[..CHECKSUM_AT]);
    h.update(&[0u8; 8]);
    h.update(&bytes[CHECKSUM_AT + 8..]);
    h.finish()
}
