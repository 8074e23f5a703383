//! Relocations: lowering ELF relocation types to [`RelocKind`]s (with GOT
//! relaxation as lld does it, and a small per-module GOT otherwise),
//! applying them with [`modtable::reloc::apply`], and choosing which ones the
//! kernel must redo when modules move.

use crate::elf::reloc_name;
use crate::error::{Error, ErrorKind, Result};
use crate::input::{ModuleObject, Placement};
use crate::layout::ModuleLayout;
use crate::symbols::{Resolved, SymbolEnv};
use crate::{bail, err};
use modtable::table::{RelocRecord, Target};
use modtable::{Class, PerClass, RelocKind};
use std::collections::HashMap;

/// `R_X86_64_NONE`.
pub const R_NONE: u32 = 0;
/// `R_X86_64_64`.
pub const R_64: u32 = 1;
/// `R_X86_64_PC32`.
pub const R_PC32: u32 = 2;
/// `R_X86_64_PLT32`.
pub const R_PLT32: u32 = 4;
/// `R_X86_64_GOTPCREL`.
pub const R_GOTPCREL: u32 = 9;
/// `R_X86_64_32`.
pub const R_32: u32 = 10;
/// `R_X86_64_32S`.
pub const R_32S: u32 = 11;
/// `R_X86_64_PC64`.
pub const R_PC64: u32 = 24;
/// `R_X86_64_GOTPCRELX`.
pub const R_GOTPCRELX: u32 = 41;
/// `R_X86_64_REX_GOTPCRELX`.
pub const R_REX_GOTPCRELX: u32 = 42;

/// Where a planned relocation came from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Section index of the place (`u32::MAX` for a GOT entry).
    pub section: u32,
    /// Offset of the place in its section (for a GOT entry: in the GOT).
    pub offset: u64,
    /// ELF relocation type.
    pub rtype: u32,
    /// Symbol index.
    pub symbol: u32,
}

/// A relocation to apply: the field at `place_off` of this module's
/// `place_class` gets `address(target) + addend` encoded as `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Class holding the field.
    pub place_class: Class,
    /// Offset of the field inside the class.
    pub place_off: u64,
    /// Encoding.
    pub kind: RelocKind,
    /// What it refers to.
    pub target: Resolved,
    /// Added to the target's address.
    pub addend: i64,
    /// Where it came from.
    pub origin: Origin,
}

/// What a module's relocations turned into.
#[derive(Clone, Debug, Default)]
pub struct ModuleRelocs {
    /// Relocations to apply (including GOT entries).
    pub relocs: Vec<Planned>,
    /// Instruction bytes rewritten by GOT relaxation: `(class, offset, byte)`.
    pub patches: Vec<(Class, u64, u8)>,
    /// Targets of the GOT entries, in GOT order.
    pub got: Vec<Resolved>,
    /// Number of `GOTPCRELX`/`REX_GOTPCRELX` relocations relaxed.
    pub relaxed: u32,
}

/// Lowers and resolves every relocation of a placed section of module `me`.
/// `layout` must not have its GOT yet (its `got_off` is where the GOT goes).
pub fn plan(
    me: u32,
    obj: &ModuleObject<'_>,
    layout: &ModuleLayout,
    env: &SymbolEnv<'_, '_>,
    closure: &[u32],
) -> Result<ModuleRelocs> {
    let mut out = ModuleRelocs::default();
    let mut got_index: HashMap<Resolved, u64> = HashMap::new();
    let mut cache: Vec<Option<Resolved>> = vec![None; obj.symbols.len()];
    for &(rs, ts) in &obj.rela_sections {
        let Placement::Class { class, nobits } = obj.placement[ts] else {
            continue;
        };
        let sec = &obj.elf.sections[ts];
        let data = obj.elf.section_data(ts);
        let base = layout.sec_off[ts];
        let relas = obj.elf.relas(rs).map_err(|e| e.context(&obj.file))?;
        out.relocs.reserve(relas.len());
        for r in relas {
            let where_ = |e: Error| {
                e.context(format_args!(
                    "{} ({} at section {} offset {:#x})",
                    obj.file,
                    reloc_name(r.typ),
                    sec.name,
                    r.offset
                ))
            };
            let kind = match r.typ {
                R_NONE => continue,
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
                    sec.name,
                    r.offset,
                    obj.symbol_name(r.sym)
                ),
            };
            let width = kind.width() as u64;
            if nobits || r.offset.checked_add(width).is_none_or(|e| e > sec.size) {
                bail!(
                    Malformed,
                    "{}: relocation {} at offset {:#x} lies outside section {} ({} bytes{})",
                    obj.file,
                    reloc_name(r.typ),
                    r.offset,
                    sec.name,
                    sec.size,
                    if nobits { ", NOBITS" } else { "" }
                );
            }
            let target = match cache.get(r.sym as usize).copied().flatten() {
                Some(t) => t,
                None => {
                    let t = env.resolve(me, obj, layout, closure, r.sym).map_err(|e| {
                        match e.kind() {
                            ErrorKind::UndefinedSymbol | ErrorKind::UndeclaredDependency => {
                                Error::new(
                                    e.kind(),
                                    format!(
                                        "{}, first referenced from section {} offset {:#x} ({})",
                                        e.message(),
                                        sec.name,
                                        r.offset,
                                        reloc_name(r.typ)
                                    ),
                                )
                            }
                            _ => where_(e),
                        }
                    })?;
                    cache[r.sym as usize] = Some(t);
                    t
                }
            };
            let origin = Origin {
                section: ts as u32,
                offset: r.offset,
                rtype: r.typ,
                symbol: r.sym,
            };
            let off = r.offset as usize;
            let mut place_off = base + r.offset;
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
                        let n = got_index.len() as u64;
                        let i = *got_index.entry(target).or_insert_with(|| {
                            out.got.push(target);
                            n
                        });
                        out.relocs.push(Planned {
                            place_class: class,
                            place_off,
                            kind,
                            target: Resolved::In {
                                module: me,
                                class: Class::Rodata,
                                off: layout.got_off + 8 * i,
                            },
                            addend: r.addend,
                            origin,
                        });
                        continue;
                    }
                }
                out.relaxed += 1;
            }
            out.relocs.push(Planned {
                place_class: class,
                place_off,
                kind,
                target,
                addend: r.addend,
                origin,
            });
        }
    }
    for (i, &t) in out.got.iter().enumerate() {
        out.relocs.push(Planned {
            place_class: Class::Rodata,
            place_off: layout.got_off + 8 * i as u64,
            kind: RelocKind::Abs64,
            target: t,
            addend: 0,
            origin: Origin {
                section: u32::MAX,
                offset: 8 * i as u64,
                rtype: R_GOTPCREL,
                symbol: u32::MAX,
            },
        });
    }
    Ok(out)
}

/// Whether the kernel must redo a relocation when modules move: everything
/// except PC-relative fields whose target is in the same module and class,
/// and absolute fields with an absolute target.
pub fn must_record(me: u32, p: &Planned) -> bool {
    match p.target {
        Resolved::Abs(_) => p.kind.is_pc_relative(),
        Resolved::In { module, class, .. } => {
            !(p.kind.is_pc_relative() && module == me && class == p.place_class)
        }
    }
}

/// The table record of a relocation.
pub fn record(p: &Planned) -> RelocRecord {
    let (target, addend) = match p.target {
        Resolved::Abs(v) => (Target::Absolute, v.wrapping_add(p.addend as u64) as i64),
        Resolved::In { module, class, off } => (
            Target::Module {
                module: module as u16,
                class,
            },
            off.wrapping_add(p.addend as u64) as i64,
        ),
    };
    RelocRecord {
        place_off: p.place_off as u32,
        place_class: p.place_class,
        kind: p.kind,
        target,
        addend,
    }
}

/// The address of a resolved target, given every module's class base addresses.
pub fn address(t: Resolved, bases: &[PerClass<u64>]) -> u64 {
    match t {
        Resolved::Abs(v) => v,
        Resolved::In { module, class, off } => bases[module as usize][class].wrapping_add(off),
    }
}

/// Applies a module's patches and relocations to its class bytes (`slots`,
/// the used part of each slot) at `bases[me]`.
pub fn apply(
    me: u32,
    obj: &ModuleObject<'_>,
    rel: &ModuleRelocs,
    slots: &mut PerClass<&mut [u8]>,
    bases: &[PerClass<u64>],
) -> Result<()> {
    for &(c, off, b) in &rel.patches {
        slots[c][off as usize] = b;
    }
    let here = bases[me as usize];
    for p in &rel.relocs {
        let v = address(p.target, bases).wrapping_add(p.addend as u64);
        let buf = &mut *slots[p.place_class];
        modtable::reloc::apply(p.kind, buf, here[p.place_class], p.place_off as usize, v).map_err(
            |e| {
                let (sec, off) = if p.origin.section == u32::MAX {
                    ("GOT".to_string(), p.origin.offset)
                } else {
                    (obj.elf.sections[p.origin.section as usize].name.to_string(), p.origin.offset)
                };
                let sym = if p.origin.symbol == u32::MAX {
                    format!("GOT entry for {v:#x}")
                } else {
                    obj.symbol_name(p.origin.symbol)
                };
                match e {
                    modtable::RelocError::Overflow { value, .. } => err!(
                        RelocationOverflow,
                        "{}: relocation overflow: {} ({}) at section {sec} offset {off:#x} against symbol `{sym}`: value {value:#x} does not fit (target {v:#x}, place {:#x})",
                        obj.file,
                        reloc_name(p.origin.rtype),
                        p.kind.name(),
                        here[p.place_class].wrapping_add(p.place_off)
                    ),
                    e => err!(Malformed, "{}: {} at section {sec} offset {off:#x}: {e}", obj.file, reloc_name(p.origin.rtype)),
                }
            },
        )?;
    }
    Ok(())
}
