//! Everything that can be done to one module object on its own, before any
//! other module is known: parse it, lay out its classes, lower its
//! relocations, and build its class bytes. What comes out owns its data, so
//! the file's bytes can be dropped (or their buffer reused) at once.

use crate::bail;
use crate::error::Result;
use crate::input::{ModInfo, ModuleObject, Placement, module_object_bytes};
use crate::layout::ModuleLayout;
use crate::plan::SectionPlan;
use crate::relocate::{self, Local, Lowered};
use crate::symbols::resolve_defined;
use modtable::{Class, PerClass};

/// A module object, prepared for linking.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// File name for messages.
    pub file: String,
    /// Its metadata.
    pub info: ModInfo,
    /// Layout of its classes, GOT included.
    pub layout: ModuleLayout,
    /// The bytes of each class (text gaps are `int3`, bss and the GOT are
    /// zero), relaxed but not yet relocated.
    pub image: PerClass<Vec<u8>>,
    /// Its relocations.
    pub lowered: Lowered,
    /// Where each of `info.exports` is.
    pub exports: Vec<Local>,
    /// Offset of the probe in text.
    pub probe_off: u64,
    /// Offset of the self-test in text, if any.
    pub selftest_off: Option<u64>,
    /// Where each placed section is inside its class, in section-index order.
    pub sections: Vec<SectionPlan>,
}

/// The text offset of an entry symbol (checked by the parser to be in text).
fn entry_off(obj: &ModuleObject<'_>, layout: &ModuleLayout, sym: u32) -> Result<u64> {
    match resolve_defined(obj, layout, sym)? {
        Some(Local::In {
            class: Class::Text,
            off,
        }) => Ok(off),
        _ => bail!(
            Unsupported,
            "{}: entry symbol `{}` is not in a text section",
            obj.file,
            obj.symbol_name(sym)
        ),
    }
}

/// Prepares the module in `data` (an object, or an archive with one module
/// member), naming it `file` in messages.
pub fn prepare(file: &str, data: &[u8]) -> Result<Prepared> {
    let bytes = module_object_bytes(file, data)?;
    let obj = ModuleObject::parse(file, bytes)?;
    let mut layout = ModuleLayout::of(&obj);
    let lowered = relocate::lower(&obj, &layout)?;
    layout.add_got(lowered.got_entries);
    for c in Class::ALL {
        if layout.size[c] > u32::MAX as u64 {
            bail!(
                Unsupported,
                "{file}: module `{}` has {} bytes of {}, more than 4 GiB",
                obj.info.name,
                layout.size[c],
                c.name()
            );
        }
    }
    let mut image: PerClass<Vec<u8>> = PerClass(Default::default());
    for c in Class::ALL {
        let fill = if c == Class::Text { 0xcc } else { 0 };
        image[c] = vec![fill; layout.size[c] as usize];
    }
    for (i, p) in obj.placement.iter().enumerate() {
        if let Placement::Class {
            class,
            nobits: false,
        } = *p
        {
            let data = obj.elf.section_data(i);
            let off = layout.sec_off[i] as usize;
            image[class][off..off + data.len()].copy_from_slice(data);
        }
    }
    for &(c, off, b) in &lowered.patches {
        image[c][off as usize] = b;
    }
    let exports = obj
        .info
        .exports
        .iter()
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
    let sections = obj
        .placement
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
        })
        .collect();
    Ok(Prepared {
        file: file.to_string(),
        info: obj.info,
        layout,
        image,
        lowered,
        exports,
        probe_off,
        selftest_off,
        sections,
    })
}
