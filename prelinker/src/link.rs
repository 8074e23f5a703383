//! The `link` step: parse the kernel and the modules, order, lay out,
//! resolve, relocate, and produce the plan and the bytes that change in the
//! kernel file: the used part of each class region and the module table.

use crate::error::Result;
use crate::input::{InputFile, ModuleObject, Placement, module_object_bytes};
use crate::kernel::{Area, Kernel};
use crate::layout::{ModuleLayout, assign_slots};
use crate::order::{Node, order};
use crate::plan::{ModulePlan, Plan};
use crate::relocate::{self, ModuleRelocs};
use crate::symbols::{Export, SymbolEnv, resolve_defined};
use crate::table_writer::{self, TableModule};
use crate::{bail, err};
use modtable::{Class, PerClass};
use std::collections::HashMap;

/// Options of the link step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkOptions {
    /// Alignment of every slot (a power of two).
    pub slot_align: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions { slot_align: 4096 }
    }
}

/// Bytes to write at an offset of the output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Offset in the file.
    pub file_off: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The result of linking, as changes to the kernel file: every byte of the
/// `replaced` areas (the three class regions and the `.modtable` area) is
/// zero in the image except where a patch writes; everything else is the
/// kernel's own bytes.
#[derive(Clone, Debug)]
pub struct Prelinked {
    /// The layout plan.
    pub plan: Plan,
    /// File ranges `(start, end)` the image replaces, sorted and disjoint.
    pub replaced: Vec<(u64, u64)>,
    /// What is written inside them.
    pub patches: Vec<Patch>,
}

impl Prelinked {
    /// The whole image, built in memory from the kernel's bytes.
    pub fn apply(&self, kernel: &[u8]) -> Vec<u8> {
        let mut image = kernel.to_vec();
        for &(s, e) in &self.replaced {
            image[s as usize..e as usize].fill(0);
        }
        for p in &self.patches {
            let at = p.file_off as usize;
            image[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
        }
        image
    }
}

/// What [`link`] produced.
#[derive(Clone)]
pub struct LinkOutput {
    /// The bootable image (a copy of the kernel with regions and table filled).
    pub image: Vec<u8>,
    /// The layout plan.
    pub plan: Plan,
}

impl std::fmt::Debug for LinkOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOutput")
            .field("image", &format_args!("<{} bytes>", self.image.len()))
            .field("plan", &self.plan)
            .finish()
    }
}

/// Everything known about one module once it has been planned.
struct Planned<'a> {
    obj: ModuleObject<'a>,
    layout: ModuleLayout,
    relocs: ModuleRelocs,
    deps: Vec<u16>,
}

/// Parses one input.
fn parse(f: &InputFile) -> Result<ModuleObject<'_>> {
    let bytes = module_object_bytes(&f.name, &f.data)?;
    ModuleObject::parse(&f.name, bytes)
}

/// Parses every input (in parallel when there are many).
fn parse_all(modules: &[InputFile]) -> Result<Vec<ModuleObject<'_>>> {
    crate::par::collect(crate::par::map(modules.iter().collect(), |_, f| parse(f)))
}

/// Links `modules` into a copy of the kernel ELF `kernel`, in memory.
pub fn link(
    kernel_name: &str,
    kernel: &[u8],
    modules: &[InputFile],
    opts: &LinkOptions,
) -> Result<LinkOutput> {
    let p = link_patches(kernel_name, kernel, modules, opts)?;
    Ok(LinkOutput {
        image: p.apply(kernel),
        plan: p.plan,
    })
}

/// Links `modules` against the kernel ELF `kernel` and returns the changes
/// to make to it. Only the kernel's headers, `.kexports` and section table
/// are read; the contents of the regions and the table area are not.
pub fn link_patches(
    kernel_name: &str,
    kernel: &[u8],
    modules: &[InputFile],
    opts: &LinkOptions,
) -> Result<Prelinked> {
    if !opts.slot_align.is_power_of_two() || opts.slot_align > 1 << 30 {
        bail!(
            Usage,
            "slot alignment {} is not a power of two (at most 1 GiB)",
            opts.slot_align
        );
    }
    let k = Kernel::parse(kernel_name, kernel)?;
    for c in Class::ALL {
        if k.regions[c].size > u32::MAX as u64 {
            bail!(
                Kernel,
                "{kernel_name}: the {} region is larger than 4 GiB",
                c.name()
            );
        }
    }
    if modules.len() > u16::MAX as usize + 1 {
        bail!(
            Usage,
            "{} modules: at most {} are supported",
            modules.len(),
            u16::MAX as usize + 1
        );
    }
    let objs = parse_all(modules)?;
    let nodes: Vec<Node<'_>> = objs
        .iter()
        .map(|o| Node {
            file: &o.file,
            name: &o.info.name,
            depends: &o.info.depends,
        })
        .collect();
    let ord = order(&nodes)?;
    let mut slot_of = vec![0u32; objs.len()];
    for (k, &i) in ord.order.iter().enumerate() {
        slot_of[i] = k as u32;
    }
    let owned_names: Vec<(String, String)> = ord
        .order
        .iter()
        .map(|&i| (objs[i].info.name.clone(), objs[i].file.clone()))
        .collect();
    let names: Vec<(&str, &str)> = owned_names
        .iter()
        .map(|(n, f)| (n.as_str(), f.as_str()))
        .collect();
    let mut objs: Vec<Option<ModuleObject<'_>>> = objs.into_iter().map(Some).collect();
    let n = ord.order.len();
    // Pass 1, in slot order: layouts (without GOT), dependency closures and
    // the exports every later module may use.
    let mut exports: HashMap<&[u8], Export> = HashMap::new();
    let mut closures: Vec<Vec<u32>> = Vec::with_capacity(n);
    let mut pending: Vec<(ModuleObject<'_>, ModuleLayout, Vec<u16>)> = Vec::with_capacity(n);
    for (me, &input) in ord.order.iter().enumerate() {
        let me = me as u32;
        let obj = objs[input].take().unwrap();
        let layout = ModuleLayout::of(&obj);
        let mut deps: Vec<u16> = ord.deps[input].iter().map(|&d| slot_of[d] as u16).collect();
        deps.sort_unstable();
        let mut closure: Vec<u32> = Vec::new();
        for &d in &deps {
            closure.push(d as u32);
            closure.extend_from_slice(&closures[d as usize]);
        }
        closure.sort_unstable();
        closure.dedup();
        for e in &obj.info.exports {
            let sym = obj.globals[e.as_bytes()];
            let target = resolve_defined(me, &obj, &layout, sym)?
                .ok_or_else(|| err!(BadExport, "{}: export `{e}` is not defined", obj.file))?;
            if k.exports.contains_key(e.as_str()) {
                bail!(
                    DuplicateExport,
                    "{}: module `{}` exports `{e}`, which the kernel already exports",
                    obj.file,
                    obj.info.name
                );
            }
            let key: &[u8] = obj.symbols[sym as usize].name;
            if let Some(prev) = exports.get(key) {
                let (pn, pf) = names[prev.module as usize];
                bail!(
                    DuplicateExport,
                    "symbol `{e}` is exported by two modules: `{pn}` ({pf}) and `{}` ({})",
                    obj.info.name,
                    obj.file
                );
            }
            exports.insert(key, Export { module: me, target });
        }
        closures.push(closure);
        pending.push((obj, layout, deps));
    }
    // Pass 2, in parallel: resolve and lower every module's relocations (a
    // module sees only the exports of its dependency closure), then append
    // its GOT. Errors are reported for the first module in slot order.
    let env = SymbolEnv {
        kernel: &k.exports,
        exports: &exports,
        modules: &names,
    };
    let planned: Vec<Planned<'_>> =
        crate::par::collect(crate::par::map(pending, |me, (obj, mut layout, deps)| {
            let relocs = relocate::plan(me as u32, &obj, &layout, &env, &closures[me])?;
            layout.add_got(relocs.got.len() as u64);
            Ok(Planned {
                obj,
                layout,
                relocs,
                deps,
            })
        }))?;
    let layouts: Vec<&ModuleLayout> = planned.iter().map(|p| &p.layout).collect();
    let slots = assign_slots(&layouts, &k.regions, opts.slot_align)?;
    let bases: Vec<PerClass<u64>> = slots
        .iter()
        .map(|s| PerClass([0, 1, 2].map(|c| k.regions.0[c].addr + s.off.0[c])))
        .collect();

    let areas: [Area; 4] = [k.regions.0[0], k.regions.0[1], k.regions.0[2], k.modtable];
    let mut replaced: Vec<(u64, u64)> = areas
        .iter()
        .map(|a| (a.file_off, a.file_off + a.size))
        .collect();
    replaced.sort_unstable();
    if replaced.windows(2).any(|w| w[0].1 > w[1].0)
        || replaced.last().is_some_and(|r| r.1 > kernel.len() as u64)
    {
        bail!(
            Kernel,
            "{kernel_name}: the module regions and {} overlap or lie outside the file",
            crate::kernel::MODTABLE_SECTION
        );
    }
    // Each region's bytes up to the end of its last slot; the rest of the
    // region stays zero in the image.
    let mut bufs: PerClass<Vec<u8>> = PerClass(Default::default());
    for c in 0..3 {
        let end = slots
            .iter()
            .map(|s| s.off.0[c] + s.size.0[c])
            .max()
            .unwrap_or(0);
        bufs.0[c] = vec![0u8; end as usize];
    }
    // Cut each region buffer into the modules' slots (slots follow each
    // other in slot order), so every module can be filled on its own.
    let mut cuts: Vec<PerClass<&mut [u8]>> = (0..n).map(|_| PerClass(Default::default())).collect();
    for (c, buf) in bufs.0.iter_mut().enumerate() {
        let mut rest: &mut [u8] = &mut buf[..];
        let mut at = 0u64;
        for (me, p) in planned.iter().enumerate() {
            let off = slots[me].off.0[c];
            let size = p.layout.size.0[c];
            let skip = off
                .checked_sub(at)
                .expect("slots are laid out in slot order");
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(skip as usize);
            let (mine, tail) = tail.split_at_mut(size as usize);
            cuts[me].0[c] = mine;
            rest = tail;
            at = off + size;
        }
    }
    let filled = crate::par::map(cuts, |me, mut cls| -> Result<(ModulePlan, TableModule)> {
        let p = &planned[me];
        let s = &slots[me];
        cls[Class::Text].fill(0xcc);
        for (i, pl) in p.obj.placement.iter().enumerate() {
            if let Placement::Class {
                class,
                nobits: false,
            } = *pl
            {
                let data = p.obj.elf.section_data(i);
                let off = p.layout.sec_off[i] as usize;
                cls[class][off..off + data.len()].copy_from_slice(data);
            }
        }
        relocate::apply(me as u32, &p.obj, &p.relocs, &mut cls, &bases)?;
        let checksum =
            modtable::checksum::module_checksum([&cls.0[0][..], &cls.0[1][..], &cls.0[2][..]]);
        let records: Vec<_> = p
            .relocs
            .relocs
            .iter()
            .filter(|r| relocate::must_record(me as u32, r))
            .map(relocate::record)
            .collect();
        let sym_off = |i: u32| match resolve_defined(me as u32, &p.obj, &p.layout, i) {
            Ok(Some(crate::symbols::Resolved::In { off, .. })) => off,
            _ => unreachable!("entry symbols were checked to be in text"),
        };
        let probe_off = sym_off(p.obj.probe);
        let selftest_off = p.obj.selftest.map(sym_off);
        let plan_mod = ModulePlan {
            name: p.obj.info.name.clone(),
            file: Some(p.obj.file.clone()),
            deps: p
                .deps
                .iter()
                .map(|&d| names[d as usize].0.to_string())
                .collect(),
            addr: bases[me],
            slot_off: s.off,
            slot_size: s.size,
            size: p.layout.size,
            align: p.layout.align,
            bss_size: p.layout.bss_size,
            probe_off,
            selftest_off,
            relocs_applied: Some(p.relocs.relocs.len() as u64),
            relocs_recorded: records.len() as u64,
            got_entries: Some(p.layout.got_entries),
            checksum,
        };
        Ok((
            plan_mod,
            TableModule {
                deps: p.deps.clone(),
                records,
            },
        ))
    });
    let (plan_mods, table_mods): (Vec<ModulePlan>, Vec<TableModule>) =
        crate::par::collect(filled)?.into_iter().unzip();
    let plan = Plan {
        slot_align: opts.slot_align,
        regions: k.regions,
        modules: plan_mods,
    };
    let table = table_writer::build(&plan, table_mods);
    if table.len() as u64 > k.modtable.size {
        bail!(
            TableOverflow,
            "{kernel_name}: the module table needs {} bytes but {} has only {} bytes",
            table.len(),
            crate::kernel::MODTABLE_SECTION,
            k.modtable.size
        );
    }
    let mut patches: Vec<Patch> = Class::ALL
        .iter()
        .zip(bufs.0)
        .filter(|(_, b)| !b.is_empty())
        .map(|(&c, bytes)| Patch {
            file_off: k.regions[c].file_off,
            bytes,
        })
        .collect();
    patches.push(Patch {
        file_off: k.modtable.file_off,
        bytes: table,
    });
    Ok(Prelinked {
        plan,
        replaced,
        patches,
    })
}
