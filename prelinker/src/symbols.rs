//! Symbol resolution. A module's undefined symbols resolve against the
//! kernel's `.kexports`, then against the exports of the modules it
//! (transitively) depends on; local and section symbols resolve inside the
//! module. Resolution never needs final addresses: a module symbol resolves to
//! (module, class, offset inside the class).

use crate::elf;
use crate::error::{Error, Result};
use crate::input::{ModuleObject, Placement};
use crate::layout::ModuleLayout;
use crate::{bail, err};
use modtable::Class;
use std::collections::HashMap;

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

/// Resolves a symbol defined in `obj` (module `me`); `None` if it is undefined.
pub fn resolve_defined(
    me: u32,
    obj: &ModuleObject<'_>,
    layout: &ModuleLayout,
    index: u32,
) -> Result<Option<Resolved>> {
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
    match s.shndx {
        0 => Ok(None),
        x if x == elf::SHN_ABS as u32 => Ok(Some(Resolved::Abs(s.value))),
        x if x == elf::SHN_COMMON as u32 => bail!(
            Unsupported,
            "{}: symbol `{}` is a COMMON symbol; build with -fno-common",
            obj.file,
            obj.symbol_name(index)
        ),
        x => match obj.placement.get(x as usize) {
            Some(Placement::Class { class, .. }) => Ok(Some(Resolved::In {
                module: me,
                class: *class,
                off: layout.sec_off[x as usize].wrapping_add(s.value),
            })),
            Some(Placement::None) => bail!(
                Unsupported,
                "{}: symbol `{}` is defined in section {}, which is not placed in the image",
                obj.file,
                obj.symbol_name(index),
                obj.elf.sections[x as usize].name
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

/// Everything a module's undefined symbols can resolve against.
pub struct SymbolEnv<'s, 'a> {
    /// Kernel exports.
    pub kernel: &'s HashMap<String, u64>,
    /// Exports of the modules placed so far.
    pub exports: &'s HashMap<&'a [u8], Export>,
    /// `(name, file)` of every module, by slot index.
    pub modules: &'s [(&'a str, &'a str)],
}

impl SymbolEnv<'_, '_> {
    /// Resolves symbol `index` of module `me`, whose transitive dependencies
    /// (sorted slot indices) are `closure`. Errors name the module file and
    /// the symbol; the caller adds where it was referenced.
    pub fn resolve(
        &self,
        me: u32,
        obj: &ModuleObject<'_>,
        layout: &ModuleLayout,
        closure: &[u32],
        index: u32,
    ) -> Result<Resolved> {
        if let Some(r) = resolve_defined(me, obj, layout, index)? {
            return Ok(r);
        }
        let s = &obj.symbols[index as usize];
        if let Some(&a) = std::str::from_utf8(s.name)
            .ok()
            .and_then(|n| self.kernel.get(n))
        {
            return Ok(Resolved::Abs(a));
        }
        if let Some(e) = self.exports.get(s.name) {
            if closure.binary_search(&e.module).is_ok() {
                return Ok(e.target);
            }
            let (dname, dfile) = self.modules[e.module as usize];
            bail!(
                UndeclaredDependency,
                "{}: module `{}` uses symbol `{}` exported by module `{dname}` ({dfile}) but does not declare depends={dname}",
                obj.file,
                obj.info.name,
                obj.symbol_name(index)
            );
        }
        if s.bind == elf::STB_WEAK {
            return Ok(Resolved::Abs(0));
        }
        Err(Error::new(
            crate::error::ErrorKind::UndefinedSymbol,
            format!(
                "{}: undefined symbol `{}` (not exported by the kernel or by a dependency of module `{}`)",
                obj.file,
                obj.symbol_name(index),
                obj.info.name
            ),
        ))
    }
}
