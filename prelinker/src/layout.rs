//! Layout: where each section goes inside its module's class, how big each
//! class is, and where each module's slots go inside the regions.
//!
//! Inside a class, `PROGBITS` sections come first in section-index order and
//! `NOBITS` sections last, each at its own alignment; the GOT (if any) is
//! appended to rodata at 8-byte alignment. A slot is the used size rounded up
//! to the slot alignment (64 bytes by default, the kernel's packing
//! alignment, so that slots sit exactly where the kernel would pack them); an
//! empty class takes no slot. Slots follow each other in module order from
//! the region base, which is the first cache line after the kernel's own
//! bytes of the class.

use crate::bail;
use crate::error::Result;
use crate::input::{ModuleObject, Placement};
use crate::kernel::Area;
use modtable::{Class, PerClass};

/// Alignment of a module's per-CPU template and of each CPU's copy of it.
pub const PERCPU_ALIGN: u64 = 64;

/// Whether a section holds per-CPU templates (`.percpu`, `.percpu.*`).
pub fn is_percpu(s: &crate::elf::Section<'_>) -> bool {
    s.name_is(".percpu") || s.name_starts_with(".percpu.")
}

/// Rounds `v` up to a multiple of `align` (a power of two).
pub fn align_up(v: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    (v + align - 1) & !(align - 1)
}

/// The layout of one module's sections inside its classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleLayout {
    /// Offset of each placed section inside its class (by section index;
    /// meaningless for sections that are not placed).
    pub sec_off: Vec<u64>,
    /// Bytes used in each class (data includes bss, rodata includes the GOT).
    pub size: PerClass<u64>,
    /// Largest alignment in each class (at least 1).
    pub align: PerClass<u64>,
    /// Bytes at the end of the data class that are bss.
    pub bss_size: u64,
    /// Offset of the per-CPU template (the `.percpu*` sections, 64-byte
    /// aligned, just before bss) inside the data class.
    pub percpu_off: u64,
    /// Bytes of the per-CPU template (0 if the module has none).
    pub percpu_size: u64,
    /// Offset of the GOT inside the rodata class.
    pub got_off: u64,
    /// Number of GOT entries.
    pub got_entries: u64,
}

impl ModuleLayout {
    /// Lays out the placed sections of a module (without a GOT): in each
    /// class PROGBITS first, then (data only) the `.percpu*` sections as one
    /// 64-byte aligned sub-range, then NOBITS (bss), so that bss stays at
    /// the end of data.
    pub fn of(obj: &ModuleObject<'_>) -> ModuleLayout {
        let mut l = ModuleLayout {
            sec_off: vec![0; obj.placement.len()],
            align: PerClass([1; 3]),
            ..Default::default()
        };
        let mut bss_start = None;
        let mut percpu_start = None;
        for pass in 0..3 {
            for (i, p) in obj.placement.iter().enumerate() {
                let Placement::Class { class, nobits } = *p else {
                    continue;
                };
                let s = &obj.elf.sections[i];
                let percpu = is_percpu(s);
                let this_pass = match (percpu, nobits) {
                    (true, _) => 1,
                    (false, false) => 0,
                    (false, true) => 2,
                };
                if this_pass != pass {
                    continue;
                }
                let mut start = l.size[class];
                if percpu && percpu_start.is_none() {
                    start = align_up(start, PERCPU_ALIGN);
                    percpu_start = Some(start);
                }
                let off = align_up(start, s.align);
                l.sec_off[i] = off;
                l.size[class] = off + s.size;
                l.align[class] = l.align[class].max(s.align);
                if pass == 2 && class == Class::Data && bss_start.is_none() {
                    bss_start = Some(off);
                }
            }
            if pass == 1
                && let Some(p) = percpu_start
            {
                l.percpu_off = p;
                l.percpu_size = l.size[Class::Data] - p;
            }
        }
        l.bss_size = bss_start.map_or(0, |b| l.size[Class::Data] - b);
        l.got_off = align_up(l.size[Class::Rodata], 8);
        l
    }

    /// Appends a GOT of `entries` 8-byte entries to rodata.
    pub fn add_got(&mut self, entries: u64) {
        self.got_entries = entries;
        if entries > 0 {
            self.got_off = align_up(self.size[Class::Rodata], 8);
            self.size[Class::Rodata] = self.got_off + 8 * entries;
            self.align[Class::Rodata] = self.align[Class::Rodata].max(8);
        }
    }
}

/// Where one module's slots are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    /// Offset of each slot inside its region.
    pub off: PerClass<u64>,
    /// Size of each slot (0 for an empty class).
    pub size: PerClass<u64>,
}

/// Assigns slots to modules (in the given order, `names[i]` naming module
/// `i` in messages) inside the regions. A class whose alignment exceeds the
/// slot alignment starts at an address aligned for it. Fails, naming the
/// first module that does not fit and how many bytes are missing, if a
/// region is too small.
pub fn assign_slots(
    layouts: &[&ModuleLayout],
    names: &[&str],
    regions: &PerClass<Area>,
    slot_align: u64,
) -> Result<Vec<Slots>> {
    let mut cursor = PerClass([0u64; 3]);
    let mut first_over: PerClass<Option<usize>> = PerClass([None; 3]);
    let mut out = Vec::with_capacity(layouts.len());
    for (i, l) in layouts.iter().enumerate() {
        let mut s = Slots::default();
        for c in Class::ALL {
            if l.size[c] == 0 {
                s.off[c] = cursor[c];
                continue;
            }
            // Aligned as an address, not as an offset: a region starts
            // only 64-byte aligned, after the kernel's own bytes.
            let base = regions[c].addr;
            let off = align_up(base + cursor[c], slot_align.max(l.align[c])) - base;
            s.off[c] = off;
            s.size[c] = align_up(l.size[c], slot_align);
            cursor[c] = off + s.size[c];
            if cursor[c] > regions[c].size && first_over[c].is_none() {
                first_over[c] = Some(i);
            }
        }
        out.push(s);
    }
    for c in Class::ALL {
        if let Some(i) = first_over[c] {
            bail!(
                RegionOverflow,
                "the {} region is too small: module `{}` ({} of {} in slot order) does not fit; the modules need {} bytes ({:#x}) but the region after the kernel's own {} bytes has {} bytes ({:#x}): {} bytes more are needed (build the kernel with PLK_MODULE_EXTRA_PAGES=N for N more 2 MiB pages per class)",
                c.name(),
                names.get(i).copied().unwrap_or("?"),
                i + 1,
                layouts.len(),
                cursor[c],
                cursor[c],
                c.name(),
                regions[c].size,
                regions[c].size,
                cursor[c] - regions[c].size
            );
        }
    }
    Ok(out)
}

/// What a page-aligned layout (every non-empty class of every module rounded
/// up to 4 KiB, like Linux modules) takes, per class.
pub fn page_aligned(sizes: impl IntoIterator<Item = PerClass<u64>>) -> PerClass<u64> {
    let mut t = PerClass([0u64; 3]);
    for s in sizes {
        for c in Class::ALL {
            t[c] += align_up(s[c], 4096);
        }
    }
    t
}
