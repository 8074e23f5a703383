//! Relocations, in two steps. [`lower`] turns a module's ELF relocations
//! into compact [`Reloc`]s using only the module itself: the field's class
//! and offset, its encoding, and a target that is either inside the module,
//! absolute, or one of the module's imports (undefined symbols); GOT
//! relaxation is decided there, as lld does it, and the rest go through a
//! small per-module GOT. Once every module has a slot, [`apply`] writes the
//! values with [`modtable::reloc::apply`], and [`must_record`] and
//! [`field`] choose and encode the ones the kernel must redo when modules
//! move.

use crate::elf::{self, reloc_name};
use crate::error::{Error, Result};
use crate::input::{ModuleObject, Placement};
use crate::layout::ModuleLayout;
use crate::symbols::{Resolved, resolve_defined};
use crate::{bail, err};
use modtable::table::{RelocField, Target};
use modtable::{Class, PerClass, RelocKind};

/// `R_X86_64_NONE`.
pub const R_NONE: u32 = object::elf::R_X86_64_NONE.0;
/// `R_X86_64_64`.
pub const R_64: u32 = object::elf::R_X86_64_64.0;
/// `R_X86_64_PC32`.
pub const R_PC32: u32 = object::elf::R_X86_64_PC32.0;
/// `R_X86_64_PLT32`.
pub const R_PLT32: u32 = object::elf::R_X86_64_PLT32.0;
/// `R_X86_64_GOTPCREL`.
pub const R_GOTPCREL: u32 = object::elf::R_X86_64_GOTPCREL.0;
/// `R_X86_64_32`.
pub const R_32: u32 = object::elf::R_X86_64_32.0;
/// `R_X86_64_32S`.
pub const R_32S: u32 = object::elf::R_X86_64_32S.0;
/// `R_X86_64_PC64`.
pub const R_PC64: u32 = object::elf::R_X86_64_PC64.0;
/// `R_X86_64_GOTPCRELX`.
pub const R_GOTPCRELX: u32 = object::elf::R_X86_64_GOTPCRELX.0;
/// `R_X86_64_REX_GOTPCRELX`.
pub const R_REX_GOTPCRELX: u32 = object::elf::R_X86_64_REX_GOTPCRELX.0;

/// `Reloc::section` of a GOT entry.
pub const GOT_SECTION: u32 = u32::MAX;

/// A relocation target as the module alone knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Local {
    /// A fixed address (an absolute symbol).
    Abs(u64),
    /// A place in one of this module's classes.
    In {
        /// Class.
        class: Class,
        /// Offset inside the class.
        off: u64,
    },
    /// The module's import with this index (an undefined symbol).
    Import(u32),
}

/// One lowered relocation: the field at `place_off` of `class` gets the
/// address of target `target` plus `addend`, encoded as `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloc {
    /// Added to the target's address.
    pub addend: i64,
    /// Offset of the field inside its class.
    pub place_off: u32,
    /// Index into [`Lowered::targets`].
    pub target: u32,
    /// ELF section index of the place ([`GOT_SECTION`] for a GOT entry),
    /// for messages.
    pub section: u32,
    /// Class holding the field.
    pub class: Class,
    /// Encoding.
    pub kind: RelocKind,
    /// ELF relocation type (for messages).
    pub rtype: u8,
}

/// Bytes of an encoded [`Reloc`] (see [`Reloc::encode`]).
pub const RELOC_BYTES: usize = 24;
/// Bytes of an encoded target (see [`encode_target`]).
pub const TARGET_BYTES: usize = 16;

fn word<const N: usize, const M: usize>(b: &[u8; M], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("in range")
}

impl Reloc {
    /// Writes the relocation into `out`, for keeping a module's relocations
    /// with its class bytes (in the link's huge-page chunks, not on the
    /// heap) between preparing and linking.
    pub fn encode(&self, out: &mut [u8; RELOC_BYTES]) {
        out[..8].copy_from_slice(&self.addend.to_le_bytes());
        out[8..12].copy_from_slice(&self.place_off.to_le_bytes());
        out[12..16].copy_from_slice(&self.target.to_le_bytes());
        out[16..20].copy_from_slice(&self.section.to_le_bytes());
        out[20] = self.class as u8;
        out[21] = self.kind as u8;
        out[22] = self.rtype;
        out[23] = 0;
    }

    /// The relocation [`Reloc::encode`] wrote into `b`.
    pub fn decode(b: &[u8; RELOC_BYTES]) -> Reloc {
        Reloc {
            addend: i64::from_le_bytes(word(b, 0)),
            place_off: u32::from_le_bytes(word(b, 8)),
            target: u32::from_le_bytes(word(b, 12)),
            section: u32::from_le_bytes(word(b, 16)),
            class: Class::from_index(b[20] as u32).expect("encoded class"),
            kind: RelocKind::from_u8(b[21]).expect("encoded kind"),
            rtype: b[22],
        }
    }
}

/// Writes target `t` (with its ELF symbol index, as in
/// [`Lowered::targets`]) into `out`.
pub fn encode_target(t: (Local, u32), out: &mut [u8; TARGET_BYTES]) {
    let (tag, class, value) = match t.0 {
        Local::Abs(v) => (0, 0, v),
        Local::In { class, off } => (1, class as u8, off),
        Local::Import(i) => (2, 0, i as u64),
    };
    out[0] = tag;
    out[1] = class;
    out[2..4].fill(0);
    out[4..8].copy_from_slice(&t.1.to_le_bytes());
    out[8..16].copy_from_slice(&value.to_le_bytes());
}

/// The target [`encode_target`] wrote into `b`.
pub fn decode_target(b: &[u8; TARGET_BYTES]) -> (Local, u32) {
    let value = u64::from_le_bytes(word(b, 8));
    let local = match b[0] {
        0 => Local::Abs(value),
        1 => Local::In {
            class: Class::from_index(b[1] as u32).expect("encoded class"),
            off: value,
        },
        _ => Local::Import(value as u32),
    };
    (local, u32::from_le_bytes(word(b, 4)))
}

/// An undefined symbol a module refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Where its name is in [`Lowered::names`]: `(start, end)`.
    pub name: (usize, usize),
    /// Whether it is weak (an unresolved weak symbol is address 0).
    pub weak: bool,
    /// Where it is first referred to (for messages): ELF section index,
    /// offset in that section and relocation type.
    pub first_use: (u32, u64, u32),
}

/// A module's relocations, lowered.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// Relocations to apply, including one `Abs64` per GOT entry (last).
    pub relocs: Vec<Reloc>,
    /// Targets, with the ELF symbol index each came from (`u32::MAX` for
    /// the GOT entries that GOT-relative fields refer to).
    pub targets: Vec<(Local, u32)>,
    /// Undefined symbols referred to, in order of first use.
    pub imports: Vec<Import>,
    /// The names of `imports`, one after the other (one buffer for all of
    /// them rather than one each).
    pub names: Vec<u8>,
    /// Instruction bytes rewritten by GOT relaxation: `(class, offset, byte)`.
    pub patches: Vec<(Class, u64, u8)>,
    /// Number of GOT entries (appended to rodata at `layout.got_off`).
    pub got_entries: u64,
}

impl Lowered {
    /// The name of import `imp` (one of [`Lowered::imports`]).
    pub fn import_name(&self, imp: &Import) -> &[u8] {
        &self.names[imp.name.0..imp.name.1]
    }
}

/// The ELF relocation type's encoding, or an error naming it.
fn kind_of(
    obj: &ModuleObject<'_>,
    section: &elf::Section<'_>,
    r: &elf::Rela,
) -> Result<Option<RelocKind>> {
    Ok(Some(match r.typ {
        R_NONE => return Ok(None),
        R_64 => RelocKind::Abs64,
        R_32 => RelocKind::Abs32,
        R_32S => RelocKind::Abs32S,
        R_PC32 | R_PLT32 | R_GOTPCREL | R_GOTPCRELX | R_REX_GOTPCRELX => RelocKind::Pc32,
        R_PC64 => RelocKind::Pc64,
        t => bail!(
            UnsupportedRelocation,
            "unsupported relocation {} in {} section {} offset {:#x} (symbol `{}`)",
            reloc_name(t),
            obj.file,
            section.name(),
            r.offset,
            obj.symbol_name(r.sym)
        ),
    }))
}

/// Lowers every relocation of a placed section of `obj`. `layout` must not
/// have its GOT yet (its `got_off` is where the GOT goes). Symbols defined in
/// the module resolve here; undefined ones become imports.
pub fn lower(obj: &ModuleObject<'_>, layout: &ModuleLayout) -> Result<Lowered> {
    let mut out = Lowered::default();
    // Target index per ELF symbol (u32::MAX: not seen yet).
    let mut of_sym: Vec<u32> = vec![u32::MAX; obj.symbols.len()];
    // GOT entry index and the target of the entry's place, per target.
    let mut got: crate::Map<Local, (u32, u32)> = crate::Map::default();
    let mut got_targets: Vec<u32> = Vec::new();
    // One allocation for all of them (GOT entries, at most a few, extra).
    let total: u64 = obj
        .rela_sections
        .iter()
        .map(|&(rs, _)| obj.elf.sections[rs].size / 24)
        .sum();
    out.relocs.reserve(total as usize + 16);
    // Each target is a symbol a relocation names, or a GOT entry.
    out.targets
        .reserve(obj.symbols.len().min(total as usize) + 16);
    // Room for every undefined symbol, which most modules all refer to
    // (names can share bytes of the string table: room for at most its
    // size, which is at most the file's).
    let (undefined, name_bytes) = obj
        .symbols
        .iter()
        .filter(|s| s.shndx == elf::SHN_UNDEF as u32)
        .fold((0, 0usize), |(n, b), s| {
            (n + 1, b.saturating_add(s.name().len()))
        });
    out.imports.reserve(undefined);
    out.names.reserve(name_bytes.min(obj.elf.data.len()));
    for &(rs, ts) in &obj.rela_sections {
        let Placement::Class { class, nobits } = obj.placement[ts] else {
            continue;
        };
        let sec = &obj.elf.sections[ts];
        let data = obj.elf.section_data(ts);
        let base = layout.sec_off[ts];
        let relas = obj.elf.relas(rs).map_err(|e| e.context(&obj.file))?;
        for r in relas {
            let Some(kind) = kind_of(obj, sec, &r)? else {
                continue;
            };
            let width = kind.width() as u64;
            if nobits || r.offset.checked_add(width).is_none_or(|e| e > sec.size) {
                bail!(
                    Malformed,
                    "{}: relocation {} at offset {:#x} lies outside section {} ({} bytes{})",
                    obj.file,
                    reloc_name(r.typ),
                    r.offset,
                    sec.name(),
                    sec.size,
                    if nobits { ", NOBITS" } else { "" }
                );
            }
            if r.sym == 0 {
                bail!(
                    Malformed,
                    "{}: {} at section {} offset {:#x} refers to the null symbol (index 0)",
                    obj.file,
                    reloc_name(r.typ),
                    sec.name(),
                    r.offset
                );
            }
            let t = match of_sym.get(r.sym as usize) {
                Some(&t) if t != u32::MAX => t,
                _ => {
                    let local = match resolve_defined(obj, layout, r.sym).map_err(|e| {
                        e.located(
                            &obj.file,
                            format_args!(
                                "{} at section {} offset {:#x}",
                                reloc_name(r.typ),
                                sec.name(),
                                r.offset
                            ),
                        )
                    })? {
                        Some(l) => l,
                        None => {
                            let s = &obj.symbols[r.sym as usize];
                            let start = out.names.len();
                            out.names.extend_from_slice(s.name());
                            out.imports.push(Import {
                                name: (start, out.names.len()),
                                weak: s.bind == elf::STB_WEAK,
                                first_use: (ts as u32, r.offset, r.typ),
                            });
                            Local::Import(out.imports.len() as u32 - 1)
                        }
                    };
                    out.targets.push((local, r.sym));
                    let t = out.targets.len() as u32 - 1;
                    of_sym[r.sym as usize] = t;
                    t
                }
            };
            let off = r.offset as usize;
            let mut place_off = base + r.offset;
            let mut target = t;
            if matches!(r.typ, R_GOTPCREL | R_GOTPCRELX | R_REX_GOTPCRELX) {
                // Relax as lld does: only the relaxable types, with the
                // addend of a plain rip-relative operand.
                let op = if r.typ != R_GOTPCREL && r.addend == -4 && off >= 2 {
                    Some((data[off - 2], data[off - 1]))
                } else {
                    None
                };
                match op {
                    Some((0x8b, _)) => {
                        // mov foo@GOTPCREL(%rip), %reg -> lea foo(%rip), %reg
                        out.patches.push((class, place_off - 2, 0x8d));
                    }
                    Some((0xff, 0x15)) => {
                        // call *foo@GOTPCREL(%rip) -> addr32 call foo
                        out.patches.push((class, place_off - 2, 0x67));
                        out.patches.push((class, place_off - 1, 0xe8));
                    }
                    Some((0xff, 0x25)) => {
                        // jmp *foo@GOTPCREL(%rip) -> jmp foo; nop
                        out.patches.push((class, place_off - 2, 0xe9));
                        out.patches.push((class, place_off + 3, 0x90));
                        place_off -= 1;
                    }
                    _ => {
                        // Through the GOT: the field refers to the entry.
                        let key = out.targets[t as usize].0;
                        let n = got_targets.len() as u32;
                        let entry = *got.entry(key).or_insert_with(|| {
                            got_targets.push(t);
                            out.targets.push((
                                Local::In {
                                    class: Class::Rodata,
                                    off: layout.got_off + 8 * n as u64,
                                },
                                u32::MAX,
                            ));
                            (n, out.targets.len() as u32 - 1)
                        });
                        target = entry.1;
                    }
                }
            }
            out.relocs.push(Reloc {
                addend: r.addend,
                place_off: place_off as u32,
                target,
                section: ts as u32,
                class,
                kind,
                rtype: r.typ as u8,
            });
        }
    }
    for (i, &t) in got_targets.iter().enumerate() {
        out.relocs.push(Reloc {
            addend: 0,
            place_off: (layout.got_off + 8 * i as u64) as u32,
            target: t,
            section: GOT_SECTION,
            class: Class::Rodata,
            kind: RelocKind::Abs64,
            rtype: R_GOTPCREL as u8,
        });
    }
    out.got_entries = got_targets.len() as u64;
    Ok(out)
}

/// Whether the kernel must redo a relocation of module `me` when modules
/// move: everything except PC-relative fields whose target is in the same
/// module and class, and absolute fields with an absolute target.
pub fn must_record(me: u32, r: &Reloc, target: Resolved) -> bool {
    match target {
        Resolved::Abs(_) => r.kind.is_pc_relative(),
        Resolved::In { module, class, .. } => {
            !(r.kind.is_pc_relative() && module == me && class == r.class)
        }
    }
}

/// The table field of a relocation whose target resolved to `target`.
pub fn field(r: &Reloc, target: Resolved) -> RelocField {
    RelocField {
        place_off: r.place_off,
        place_class: r.class,
        kind: r.kind,
        target: match target {
            Resolved::Abs(_) => Target::Absolute,
            Resolved::In { module, class, .. } => Target::Module {
                module: module as u16,
                class,
            },
        },
    }
}

/// The address of a resolved target, given every module's class base addresses.
pub fn address(t: Resolved, bases: &[PerClass<u64>]) -> u64 {
    match t {
        Resolved::Abs(v) => v,
        Resolved::In { module, class, off } => bases[module as usize][class].wrapping_add(off),
    }
}

/// A relocation that could not be applied: which one, and the error.
#[derive(Debug)]
pub struct ApplyError {
    /// Index of the relocation in the list applied.
    pub index: usize,
    /// The value that was to be written.
    pub value: u64,
    /// The place's address.
    pub place: u64,
    /// What went wrong.
    pub error: modtable::RelocError,
}

/// Applies module `me`'s relocations to its class bytes `image`, placed at
/// `bases[me]`; `targets` are its targets, resolved.
pub fn apply(
    me: u32,
    relocs: &[Reloc],
    targets: &[Resolved],
    image: &mut PerClass<&mut [u8]>,
    bases: &[PerClass<u64>],
) -> std::result::Result<(), ApplyError> {
    let here = bases[me as usize];
    for (index, r) in relocs.iter().enumerate() {
        let v = address(targets[r.target as usize], bases).wrapping_add(r.addend as u64);
        modtable::reloc::apply(
            r.kind,
            image[r.class],
            here[r.class],
            r.place_off as usize,
            v,
        )
        .map_err(|error| ApplyError {
            index,
            value: v,
            place: here[r.class].wrapping_add(r.place_off as u64),
            error,
        })?;
    }
    Ok(())
}

/// The message for a relocation of `obj` that could not be applied.
pub fn apply_error_message(
    obj: &ModuleObject<'_>,
    relocs: &[Reloc],
    targets: &[(Local, u32)],
    layout: &ModuleLayout,
    e: &ApplyError,
) -> Error {
    let r = &relocs[e.index];
    let (sec, off) = if r.section == GOT_SECTION {
        ("GOT".to_string(), r.place_off as u64 - layout.got_off)
    } else {
        let s = r.section as usize;
        (
            obj.elf.sections[s].name().to_string(),
            (r.place_off as u64).wrapping_sub(layout.sec_off[s]),
        )
    };
    let sym = match targets[r.target as usize].1 {
        u32::MAX => format!("GOT entry for {:#x}", e.value),
        s => obj.symbol_name(s),
    };
    match e.error {
        modtable::RelocError::Overflow { value, .. } => err!(
            RelocationOverflow,
            "{}: relocation overflow: {} ({}) at section {sec} offset {off:#x} against symbol `{sym}`: value {} does not fit (target {:#x}, place {:#x})",
            obj.file,
            reloc_name(r.rtype as u32),
            r.kind.name(),
            modtable::reloc::Hex(value),
            e.value,
            e.place
        ),
        ref x => err!(
            Malformed,
            "{}: {} at section {sec} offset {off:#x}: {x}",
            obj.file,
            reloc_name(r.rtype as u32)
        ),
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    /// Relocations and targets come back from their encoding unchanged,
    /// for every class, kind and kind of target, and extreme values.
    #[test]
    fn relocs_and_targets_round_trip() {
        let kinds = [
            RelocKind::Abs64,
            RelocKind::Abs32,
            RelocKind::Abs32S,
            RelocKind::Pc32,
            RelocKind::Pc64,
        ];
        let mut b = [0xa5u8; RELOC_BYTES];
        for (i, (&class, &kind)) in Class::ALL.iter().zip(kinds.iter().cycle()).enumerate() {
            for addend in [i64::MIN, -4, 0, i64::MAX] {
                let r = Reloc {
                    addend,
                    place_off: u32::MAX - i as u32,
                    target: 7 + i as u32,
                    section: GOT_SECTION - i as u32,
                    class,
                    kind,
                    rtype: R_REX_GOTPCRELX as u8,
                };
                r.encode(&mut b);
                assert_eq!(Reloc::decode(&b), r);
            }
        }
        for &kind in &kinds {
            let r = Reloc {
                addend: 1,
                place_off: 2,
                target: 3,
                section: 4,
                class: Class::Data,
                kind,
                rtype: 5,
            };
            r.encode(&mut b);
            assert_eq!(Reloc::decode(&b), r);
        }
        let mut t = [0x5au8; TARGET_BYTES];
        for target in [
            (Local::Abs(u64::MAX), 0),
            (Local::Abs(0), u32::MAX),
            (
                Local::In {
                    class: Class::Rodata,
                    off: 1 << 40,
                },
                9,
            ),
            (
                Local::In {
                    class: Class::Data,
                    off: 0,
                },
                1,
            ),
            (Local::Import(u32::MAX), 3),
        ] {
            encode_target(target, &mut t);
            assert_eq!(decode_target(&t), target);
        }
    }
}
