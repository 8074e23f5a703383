//! Everything that can be done to one module object on its own, before any
//! other module is known: parse it, lay out its classes, lower its
//! relocations, and build its class bytes (in an [`Arena`]). What comes out
//! owns its data or has it in the arena, so the file's bytes can be dropped
//! (or their buffer reused) at once.

use crate::arena::{Arena, Loc};
use crate::bail;
use crate::error::Result;
use crate::input::{ModInfo, ModuleObject, Placement, module_object_bytes};
use crate::layout::ModuleLayout;
use crate::plan::SectionPlan;
use crate::relocate::{self, Local, Lowered, RELOC_BYTES, Reloc, TARGET_BYTES};
use crate::symbols::resolve_defined;
use modtable::{Class, PerClass};

/// A module object, prepared for linking.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// File name for messages.
    pub file: String,
    /// Its metadata.
    pub info: ModInfo,
    /// Layout of its classes, GOT included, without the offsets of its
    /// sections (`sec_off` is empty: [`ModuleLayout::of`] gives them again).
    pub layout: ModuleLayout,
    /// Where the bytes of its classes are in the arena it was prepared
    /// with: text, rodata and data one after the other, of the sizes in
    /// `layout` (text gaps are `int3`, bss and the GOT are zero), relaxed
    /// but not yet relocated; then its relocations and targets (see
    /// [`Lists`]).
    pub image: Loc,
    /// Where its relocations still to apply (see
    /// [`Prepared::applied_early`]) and their targets are, after the class
    /// bytes at `image`.
    pub lists: Lists,
    /// Its imports (its relocations and targets are in `lists`, and these
    /// lists are empty).
    pub lowered: Lowered,
    /// Relocations already applied here: PC-relative fields whose target is
    /// in the same class of the module, which have the same value wherever
    /// the class is placed.
    pub applied_early: u64,
    /// Where each of `info.exports` is.
    pub exports: Vec<Local>,
    /// Offset of the probe in text.
    pub probe_off: u64,
    /// Offset of the self-test in text, if any.
    pub selftest_off: Option<u64>,
    /// Where each placed section is inside its class, in section-index order
    /// (empty if not recorded: see [`prepare_with`]).
    pub sections: Vec<SectionPlan>,
}

/// Where a prepared module's relocations and targets are kept: encoded
/// ([`Reloc::encode`], [`relocate::encode_target`]) after its class bytes
/// in the arena, in huge-page chunks, rather than on the heap, whose pages
/// are each a page fault when first written (about a quarter of the time
/// of a large link went to those).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// Offset of the relocations from the start of the class bytes.
    pub at: usize,
    /// Number of relocations.
    pub relocs: usize,
    /// Number of targets (after the relocations).
    pub targets: usize,
}

impl Lists {
    /// Bytes from the start of the class bytes to the end of the lists.
    pub fn end(&self) -> usize {
        self.at + RELOC_BYTES * self.relocs + TARGET_BYTES * self.targets
    }

    /// The relocations, from `b`, the module's bytes from offset `at` on.
    pub fn relocs<'b>(&self, b: &'b [u8]) -> impl ExactSizeIterator<Item = Reloc> + 'b {
        b[..RELOC_BYTES * self.relocs]
            .as_chunks::<RELOC_BYTES>()
            .0
            .iter()
            .map(Reloc::decode)
    }

    /// The targets, from `b`, the module's bytes from offset `at` on.
    pub fn targets<'b>(&self, b: &'b [u8]) -> impl ExactSizeIterator<Item = (Local, u32)> + 'b {
        let at = RELOC_BYTES * self.relocs;
        b[at..at + TARGET_BYTES * self.targets]
            .as_chunks::<TARGET_BYTES>()
            .0
            .iter()
            .map(relocate::decode_target)
    }
}

/// The text offset of an entry symbol (checked by the parser to be in text).
fn entry_off(obj: &ModuleObject<'_>, layout: &ModuleLayout, sym: u32) -> Result<u64> {
    match resolve_defined(obj, layout, sym)? {
        Some(Local::In {
            class: Class::Text,
            off,
        }) => {
            // An entry at its section's very end would run into whatever
            // follows it.
            let s = &obj.symbols[sym as usize];
            let sec = &obj.elf.sections[s.shndx as usize];
            if s.value >= sec.size {
                bail!(
                    Malformed,
                    "{}: entry symbol `{}` is at offset {:#x} of section {}, which has only {} bytes",
                    obj.file,
                    obj.symbol_name(sym),
                    s.value,
                    sec.name(),
                    sec.size
                );
            }
            Ok(off)
        }
        _ => bail!(
            Unsupported,
            "{}: entry symbol `{}` is not in a text section",
            obj.file,
            obj.symbol_name(sym)
        ),
    }
}

/// Applies the relocations whose value does not depend on where the
/// module's slots go (PC-relative, target in the field's own class of this
/// module: the difference of two offsets in one class), as if the class were
/// at address 0, and returns the others, in order, with the number applied.
fn apply_early(
    obj: &ModuleObject<'_>,
    mut lowered: Lowered,
    layout: &ModuleLayout,
    image: &mut PerClass<&mut [u8]>,
) -> Result<(Lowered, u64)> {
    // The relocations still to apply are moved to the front in place (one
    // buffer fewer per module than collecting them into a new one).
    let mut kept = 0;
    for index in 0..lowered.relocs.len() {
        let r = lowered.relocs[index];
        match lowered.targets[r.target as usize].0 {
            Local::In { class, off } if class == r.class && r.kind.is_pc_relative() => {
                let value = off.wrapping_add(r.addend as u64);
                let at = r.place_off as usize;
                if let Err(error) = modtable::reloc::apply(r.kind, image[class], 0, at, value) {
                    let e = relocate::ApplyError {
                        index,
                        value,
                        place: r.place_off as u64,
                        error,
                    };
                    return Err(relocate::apply_error_message(
                        obj,
                        &lowered.relocs,
                        &lowered.targets,
                        layout,
                        &e,
                    ));
                }
            }
            _ => {
                lowered.relocs[kept] = r;
                kept += 1;
            }
        }
    }
    let early = (lowered.relocs.len() - kept) as u64;
    lowered.relocs.truncate(kept);
    Ok((lowered, early))
}

/// Splits `bytes` into the three classes, of `sizes` bytes each, in class
/// order.
pub fn split_classes(bytes: &mut [u8], sizes: PerClass<usize>) -> PerClass<&mut [u8]> {
    let (text, rest) = bytes.split_at_mut(sizes[Class::Text]);
    let (rodata, data) = rest.split_at_mut(sizes[Class::Rodata]);
    debug_assert_eq!(data.len(), sizes[Class::Data]);
    PerClass([text, rodata, data])
}

/// Prepares the module in `data` (an object, or an archive with one module
/// member), naming it `file` in messages, with its class bytes in `arena`.
pub fn prepare(file: &str, data: &[u8], arena: &mut Arena<'_>) -> Result<Prepared> {
    prepare_with(file, data, true, arena)
}

/// Like [`prepare`]; `record_sections` says whether to record where each
/// placed section goes ([`Prepared::sections`], empty otherwise).
pub fn prepare_with(
    file: &str,
    data: &[u8],
    record_sections: bool,
    arena: &mut Arena<'_>,
) -> Result<Prepared> {
    let bytes = module_object_bytes(file, data)?;
    let obj = ModuleObject::parse(file, bytes)?;
    if let Some(i) = (0..obj.placement.len()).find(|&i| {
        obj.placement[i] != Placement::None
            && crate::layout::is_percpu(&obj.elf.sections[i])
            && obj.elf.sections[i].align > crate::layout::PERCPU_ALIGN
    }) {
        bail!(
            Unsupported,
            "{file}: per-CPU section `{}` is aligned to {} bytes, more than the {} of a per-CPU copy",
            obj.elf.sections[i].name(),
            obj.elf.sections[i].align,
            crate::layout::PERCPU_ALIGN
        );
    }
    let mut layout = ModuleLayout::of(&obj);
    let lowered = relocate::lower(&obj, &layout)?;
    layout.add_got(lowered.got_entries);
    for c in Class::ALL {
        if c == Class::Data && layout.percpu_size > 0 && layout.percpu_size > (1 << 20) {
            bail!(
                Unsupported,
                "{file}: module `{}` has {} bytes of per-CPU data, more than 1 MiB",
                obj.info.name(),
                layout.percpu_size
            );
        }
        if layout.size[c] > u32::MAX as u64 {
            bail!(
                Unsupported,
                "{file}: module `{}` has {} bytes of {}, more than 4 GiB",
                obj.info.name(),
                layout.size[c],
                c.name()
            );
        }
    }
    // Each class is built in one pass over its placed PROGBITS sections in
    // offset order (section-index order, but the per-CPU template comes
    // after the other data: see `ModuleLayout::of`), with the gaps between
    // them filled (`int3` in text), then bss and the GOT as zeros (which
    // the arena's bytes already are).
    let fill = |c: Class| if c == Class::Text { 0xcc } else { 0 };
    let sizes = layout.size.map(|s| s as usize);
    let class_len: usize = sizes.0.iter().sum();
    // Room for the class bytes and, at most, every relocation and target
    // (trimmed once the early ones are applied).
    let lists_at = class_len.next_multiple_of(8);
    let most = lists_at + RELOC_BYTES * lowered.relocs.len() + TARGET_BYTES * lowered.targets.len();
    let (loc, bytes) = arena.alloc(most)?;
    let (class_bytes, list_bytes) = bytes.split_at_mut(lists_at);
    let mut image = split_classes(&mut class_bytes[..class_len], sizes);
    let mut end = PerClass([0usize; 3]);
    // Visiting the sections in the layout's own order needs no sort.
    let mut copy = |i: usize, class: Class| {
        let data = obj.elf.section_data(i);
        let off = layout.sec_off[i] as usize;
        let img = &mut image[class];
        debug_assert!(end[class] <= off, "sections in order");
        if fill(class) != 0 {
            img[end[class]..off].fill(fill(class));
        }
        img[off..off + data.len()].copy_from_slice(data);
        end[class] = off + data.len();
    };
    let mut percpu = Vec::new();
    for (i, p) in obj.placement.iter().enumerate() {
        if let Placement::Class {
            class,
            nobits: false,
        } = *p
        {
            if crate::layout::is_percpu(&obj.elf.sections[i]) {
                percpu.push((i, class));
            } else {
                copy(i, class);
            }
        }
    }
    for (i, class) in percpu {
        copy(i, class);
    }
    for c in Class::ALL {
        if fill(c) != 0 {
            image[c][end[c]..].fill(fill(c));
        }
    }
    for &(c, off, b) in &lowered.patches {
        image[c][off as usize] = b;
    }
    let (mut lowered, applied_early) = apply_early(&obj, lowered, &layout, &mut image)?;
    let lists = Lists {
        at: lists_at,
        relocs: lowered.relocs.len(),
        targets: lowered.targets.len(),
    };
    let (rl, tl) = list_bytes.split_at_mut(RELOC_BYTES * lists.relocs);
    for (r, out) in lowered.relocs.iter().zip(rl.as_chunks_mut().0) {
        r.encode(out);
    }
    for (&t, out) in lowered.targets.iter().zip(tl.as_chunks_mut().0) {
        relocate::encode_target(t, out);
    }
    arena.trim_last(loc, lists.end());
    lowered.relocs = Vec::new();
    lowered.targets = Vec::new();
    let exports = obj
        .info
        .exports()
        .map(|e| {
            let sym = obj.globals[e.as_bytes()];
            resolve_defined(&obj, &layout, sym)?
                .ok_or_else(|| crate::err!(BadExport, "{file}: export `{e}` is not defined"))
        })
        .collect::<Result<Vec<_>>>()?;
    let probe_off = entry_off(&obj, &layout, obj.probe)?;
    let selftest_off = obj
        .selftest
        .map(|s| entry_off(&obj, &layout, s))
        .transpose()?;
    // Sections `..recorded` are recorded.
    let recorded = if record_sections {
        obj.placement.len()
    } else {
        0
    };
    let placed = obj.placement[..recorded]
        .iter()
        .filter(|p| **p != Placement::None)
        .count();
    let mut sections = Vec::with_capacity(placed);
    sections.extend(
        obj.placement[..recorded]
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match *p {
                Placement::Class { class, .. } => Some(SectionPlan {
                    name: obj.elf.sections[i].name().to_string(),
                    class,
                    offset: layout.sec_off[i],
                    size: obj.elf.sections[i].size,
                }),
                Placement::None => None,
            }),
    );
    // Section offsets serve only messages from here on, which lay the
    // module out again: the heap need not keep them.
    layout.sec_off = Vec::new();
    Ok(Prepared {
        file: file.to_string(),
        info: obj.info,
        layout,
        image: loc,
        lists,
        lowered,
        applied_early,
        exports,
        probe_off,
        selftest_off,
        sections,
    })
}
