//! Laying a module object out in its three classes and relocating it for
//! the addresses it was given.
//!
//! Layout follows the prelinker: inside a class, `PROGBITS` sections first
//! in section order, then `NOBITS`, each at its own alignment; gaps in text
//! are `int3`. Every `GOTPCREL`-family relocation goes through a GOT of
//! 8-byte entries appended to rodata (no instruction is rewritten). The
//! field arithmetic is `modtable::reloc::apply`, the same host-tested code
//! the prelinker and the boot-time loader use.

use super::elf::{Object, SHN_ABS, SHN_UNDEF, reloc_name, shown_symbol};
use super::error::LoadError;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use modtable::reloc::{self, RelocError, RelocKind};
use modtable::{Class, PerClass};
use reclaim::align_up;

const R_NONE: u32 = 0;
const R_64: u32 = 1;
const R_PC32: u32 = 2;
const R_PLT32: u32 = 4;
const R_GOTPCREL: u32 = 9;
const R_32: u32 = 10;
const R_32S: u32 = 11;
const R_PC64: u32 = 24;
const R_GOTPCRELX: u32 = 41;
const R_REX_GOTPCRELX: u32 = 42;

fn is_got(t: u32) -> bool {
    matches!(t, R_GOTPCREL | R_GOTPCRELX | R_REX_GOTPCRELX)
}

/// Where every placed section goes inside its class, and the class sizes.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Offset of each placed section inside its class (by section index).
    pub sec_off: Vec<u64>,
    /// Bytes used in each class (data includes bss, rodata the GOT).
    pub size: PerClass<u64>,
    /// Largest alignment in each class (at least 1).
    pub align: PerClass<u64>,
    /// Bytes at the end of data that are bss.
    pub bss_size: u64,
    /// Offset of the GOT in rodata.
    pub got_off: u64,
    /// Symbol index of each GOT entry.
    pub got: Vec<usize>,
}

/// Lays out `obj`'s classes (GOT included).
pub fn layout(obj: &Object<'_>) -> Layout {
    let mut l = Layout {
        sec_off: alloc::vec![0; obj.sections.len()],
        align: PerClass([1; 3]),
        ..Layout::default()
    };
    let mut bss_start = None;
    for nobits_pass in [false, true] {
        for (i, s) in obj.sections.iter().enumerate() {
            let Some((class, nobits)) = s.placed else {
                continue;
            };
            if nobits != nobits_pass {
                continue;
            }
            let off = align_up(l.size[class], s.align);
            l.sec_off[i] = off;
            l.size[class] = off + s.size;
            l.align[class] = l.align[class].max(s.align);
            if nobits && class == Class::Data && bss_start.is_none() {
                bss_start = Some(off);
            }
        }
    }
    l.bss_size = bss_start.map_or(0, |b| l.size[Class::Data] - b);
    for (_, relas) in &obj.relas {
        for r in relas.iter() {
            let sym = r.get_symbol_table_index() as usize;
            if is_got(r.get_type()) && !l.got.contains(&sym) {
                l.got.push(sym);
            }
        }
    }
    if !l.got.is_empty() {
        l.got_off = align_up(l.size[Class::Rodata], 8);
        l.size[Class::Rodata] = l.got_off + 8 * l.got.len() as u64;
        l.align[Class::Rodata] = l.align[Class::Rodata].max(8);
    }
    l
}

/// The class bytes of a relocated module.
pub struct Linked {
    /// Each class's bytes, for its final address.
    pub image: PerClass<Vec<u8>>,
    /// Relocations applied (GOT entries included).
    pub relocs: u32,
}

/// How a symbol's name resolves against the kernel and kept modules:
/// `resolve(name, weak)` gives its address or the reason it cannot.
pub type Resolver<'r> = dyn FnMut(&str, bool) -> Result<u64, LoadError> + 'r;

fn no_memory(obj: &Object<'_>, c: Class, n: u64) -> LoadError {
    LoadError::NoMemory {
        object: obj.file.to_string(),
        what: format!("{n} bytes to build its {} class", c.name()),
    }
}

/// Name of symbol `i` for messages (section symbols get their section's).
fn symbol_name(obj: &Object<'_>, i: usize) -> String {
    obj.symbols.get(i).map_or_else(
        || format!("#{i}"),
        |s| shown_symbol(s.name, s.shndx, &obj.sections, i),
    )
}

/// The address of symbol `i`, given the class bases.
fn symbol_address(
    obj: &Object<'_>,
    l: &Layout,
    base: &PerClass<u64>,
    i: usize,
    resolve: &mut Resolver<'_>,
) -> Result<u64, LoadError> {
    let s = obj.symbols.get(i).ok_or_else(|| LoadError::Malformed {
        object: obj.file.to_string(),
        what: format!("relocation refers to symbol {i}, out of range"),
    })?;
    match s.shndx {
        SHN_UNDEF => resolve(s.name, s.weak),
        SHN_ABS => Ok(s.value),
        // COMMON symbols were refused when the object was parsed.
        x if x >= 0xff00 => Err(LoadError::Unsupported {
            object: obj.file.to_string(),
            what: format!(
                "symbol `{}` has reserved section index {x:#x}",
                symbol_name(obj, i)
            ),
        }),
        x => match obj.sections[x as usize].placed {
            Some((class, _)) => Ok(base[class]
                .wrapping_add(l.sec_off[x as usize])
                .wrapping_add(s.value)),
            None => Err(LoadError::Unsupported {
                object: obj.file.to_string(),
                what: format!(
                    "symbol `{}` is defined in section {}, which is not loaded",
                    symbol_name(obj, i),
                    obj.sections[x as usize].name
                ),
            }),
        },
    }
}

/// The text offset of entry symbol `i`.
pub fn entry_offset(obj: &Object<'_>, l: &Layout, i: usize) -> u64 {
    let s = &obj.symbols[i];
    l.sec_off[s.shndx as usize] + s.value
}

/// The address of a defined symbol `name` of `obj`, if it is global and
/// placed.
pub fn export_address(
    obj: &Object<'_>,
    l: &Layout,
    base: &PerClass<u64>,
    name: &str,
) -> Option<u64> {
    let s = obj
        .symbols
        .iter()
        .find(|s| s.global && s.shndx != SHN_UNDEF && s.name == name)?;
    let (class, _) = obj.sections.get(s.shndx as usize)?.placed?;
    Some(base[class] + l.sec_off[s.shndx as usize] + s.value)
}

/// Builds the class bytes of `obj` laid out as `l` at `base` and applies
/// every relocation; imports resolve through `resolve`.
pub fn link(
    obj: &Object<'_>,
    l: &Layout,
    base: &PerClass<u64>,
    resolve: &mut Resolver<'_>,
) -> Result<Linked, LoadError> {
    let mut image = PerClass([Vec::new(), Vec::new(), Vec::new()]);
    for c in Class::ALL {
        let n = l.size[c] as usize;
        image[c]
            .try_reserve_exact(n)
            .map_err(|_| no_memory(obj, c, n as u64))?;
        image[c].resize(n, if c == Class::Text { 0xcc } else { 0 });
    }
    for (i, s) in obj.sections.iter().enumerate() {
        if let Some((c, false)) = s.placed {
            let off = l.sec_off[i] as usize;
            image[c][off..off + s.data.len()].copy_from_slice(s.data);
        }
    }
    let mut cache: Vec<Option<u64>> = alloc::vec![None; obj.symbols.len()];
    let mut addr = |i: usize, resolve: &mut Resolver<'_>| -> Result<u64, LoadError> {
        if let Some(Some(a)) = cache.get(i) {
            return Ok(*a);
        }
        let a = symbol_address(obj, l, base, i, resolve)?;
        if let Some(slot) = cache.get_mut(i) {
            *slot = Some(a);
        }
        Ok(a)
    };
    let mut relocs = 0u32;
    for (k, &sym) in l.got.iter().enumerate() {
        let target = addr(sym, resolve)?;
        let off = (l.got_off + 8 * k as u64) as usize;
        image[Class::Rodata][off..off + 8].copy_from_slice(&target.to_le_bytes());
        relocs += 1;
    }
    for &(t, relas) in &obj.relas {
        let sec = &obj.sections[t];
        let Some((class, nobits)) = sec.placed else {
            continue;
        };
        for r in relas {
            let rtype = r.get_type();
            let sym = r.get_symbol_table_index() as usize;
            let kind = match rtype {
                R_NONE => continue,
                R_64 => RelocKind::Abs64,
                R_32 => RelocKind::Abs32,
                R_32S => RelocKind::Abs32S,
                R_PC32 | R_PLT32 | R_GOTPCREL | R_GOTPCRELX | R_REX_GOTPCRELX => RelocKind::Pc32,
                R_PC64 => RelocKind::Pc64,
                _ => {
                    return Err(LoadError::UnsupportedRelocation {
                        object: obj.file.to_string(),
                        rtype: reloc_name(rtype),
                        section: sec.name.to_string(),
                        offset: r.get_offset(),
                        symbol: symbol_name(obj, sym),
                    });
                }
            };
            let width = kind.width() as u64;
            if nobits
                || r.get_offset()
                    .checked_add(width)
                    .is_none_or(|e| e > sec.size)
            {
                return Err(LoadError::Malformed {
                    object: obj.file.to_string(),
                    what: format!(
                        "{} at offset {:#x} lies outside section {} ({} bytes)",
                        reloc_name(rtype),
                        r.get_offset(),
                        sec.name,
                        sec.size
                    ),
                });
            }
            let addend = r.get_addend() as i64;
            let s = if is_got(rtype) {
                let k = l.got.iter().position(|&g| g == sym).unwrap_or(0);
                base[Class::Rodata] + l.got_off + 8 * k as u64
            } else {
                addr(sym, resolve)?
            };
            let value = s.wrapping_add(addend as u64);
            let off = (l.sec_off[t] + r.get_offset()) as usize;
            reloc::apply(kind, &mut image[class], base[class], off, value).map_err(
                |e| match e {
                    RelocError::Overflow { value: v, .. } => LoadError::RelocationOverflow {
                        object: obj.file.to_string(),
                        what: format!(
                            "{} in section {} offset {:#x} against `{}`: value {} does not fit",
                            reloc_name(rtype),
                            sec.name,
                            r.get_offset(),
                            symbol_name(obj, sym),
                            reloc::Hex(v)
                        ),
                    },
                    other => LoadError::Malformed {
                        object: obj.file.to_string(),
                        what: format!("{other}"),
                    },
                },
            )?;
            relocs += 1;
        }
    }
    Ok(Linked { image, relocs })
}
