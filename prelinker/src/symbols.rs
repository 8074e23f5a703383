//! Symbol resolution. A module's undefined symbols resolve against the
//! kernel's `.kexports`, then against the exports of the modules it
//! (transitively) depends on; local and section symbols resolve inside the
//! module. Resolution never needs final addresses: a module symbol resolves to
//! (module, class, offset inside the class).

use crate::Map;
use crate::elf;
use crate::error::Result;
use crate::input::{ModuleObject, Placement};
use crate::layout::ModuleLayout;
use crate::relocate::Local;
use crate::{bail, err};
use modtable::Class;

/// What a symbol resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolved {
    /// A fixed address (kernel export or absolute symbol).
    Abs(u64),
    /// A place inside a module's class.
    In {
        /// Module index (slot order).
        module: u32,
        /// Class.
        class: Class,
        /// Offset inside the class.
        off: u64,
    },
}

/// A symbol a module exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Export {
    /// The exporting module (slot order).
    pub module: u32,
    /// Where the symbol is.
    pub target: Resolved,
}

/// Resolves a symbol defined in `obj` to a place in the module (or an
/// absolute address); `None` if it is undefined.
pub fn resolve_defined(
    obj: &ModuleObject<'_>,
    layout: &ModuleLayout,
    index: u32,
) -> Result<Option<Local>> {
    let s = obj
        .symbols
        .get(index as usize)
        .ok_or_else(|| err!(Malformed, "{}: symbol index {index} out of range", obj.file))?;
    if s.typ == elf::STT_TLS {
        bail!(
            Unsupported,
            "{}: symbol `{}` is thread-local; modules cannot use TLS",
            obj.file,
            obj.symbol_name(index)
        );
    }
    if s.typ == elf::STT_GNU_IFUNC {
        bail!(
            Unsupported,
            "{}: symbol `{}` is an indirect function (STT_GNU_IFUNC); modules cannot use them",
            obj.file,
            obj.symbol_name(index)
        );
    }
    match s.shndx {
        0 => Ok(None),
        x if x == elf::SHN_ABS as u32 => Ok(Some(Local::Abs(s.value))),
        x if x == elf::SHN_COMMON as u32 => bail!(
            Unsupported,
            "{}: symbol `{}` is a COMMON symbol; build with -fno-common",
            obj.file,
            obj.symbol_name(index)
        ),
        x => match obj.placement.get(x as usize) {
            Some(Placement::Class { class, .. }) => {
                let sec = &obj.elf.sections[x as usize];
                if s.value > sec.size {
                    bail!(
                        Malformed,
                        "{}: symbol `{}` has value {:#x}, past the end of its section {} ({} bytes)",
                        obj.file,
                        obj.symbol_name(index),
                        s.value,
                        sec.name(),
                        sec.size
                    );
                }
                Ok(Some(Local::In {
                    class: *class,
                    off: layout.sec_off[x as usize] + s.value,
                }))
            }
            Some(Placement::None) => bail!(
                Unsupported,
                "{}: symbol `{}` is defined in section {}, which is not placed in the image",
                obj.file,
                obj.symbol_name(index),
                obj.elf.sections[x as usize].name()
            ),
            None => bail!(
                Malformed,
                "{}: symbol `{}` has section index {x}, out of range",
                obj.file,
                obj.symbol_name(index)
            ),
        },
    }
}

/// What an import (an undefined symbol) of a module resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The kernel or a module in the dependency closure defines it.
    Found(Resolved),
    /// Exported by this module, which is not in the dependency closure.
    Undeclared(u32),
    /// Nobody exports it.
    Undefined,
}

/// Everything a module's undefined symbols can resolve against.
pub struct SymbolEnv<'s> {
    /// Kernel exports.
    pub kernel: &'s Map<String, u64>,
    /// Exports of every module, by name.
    pub exports: &'s Map<Vec<u8>, Export>,
}

impl SymbolEnv<'_> {
    /// Looks up an import of a module whose transitive dependencies (sorted
    /// slot indices) are `closure`: the kernel's exports first, then the
    /// exports of the dependencies; an unresolved weak symbol is address 0.
    pub fn lookup(&self, name: &[u8], weak: bool, closure: &[u32]) -> Lookup {
        if let Some(&a) = std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.kernel.get(n))
        {
            return Lookup::Found(Resolved::Abs(a));
        }
        if let Some(e) = self.exports.get(name) {
            if closure.binary_search(&e.module).is_ok() {
                return Lookup::Found(e.target);
            }
            return Lookup::Undeclared(e.module);
        }
        if weak {
            return Lookup::Found(Resolved::Abs(0));
        }
        Lookup::Undefined
    }
}
