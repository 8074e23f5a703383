//! The `link` step: parse the kernel and the modules, order, lay out,
//! resolve, relocate, and produce the image bytes and the plan.

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

/// What the link step produced.
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
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if modules.len() < 64 || threads < 2 {
        return modules.iter().map(parse).collect();
    }
    let chunk = modules.len().div_ceil(threads);
    let parts: Vec<Result<Vec<ModuleObject<'_>>>> = std::thread::scope(|s| {
        let hs: Vec<_> = modules
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(parse).collect::<Result<Vec<_>>>()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("parser thread panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(modules.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// Links `modules` into a copy of the kernel ELF `kernel`.
pub fn link(
    kernel_name: &str,
    kernel: &[u8],
    modules: &[InputFile],
    opts: &LinkOptions,
) -> Result<LinkOutput> {
    link_into(kernel_name, kernel.to_vec(), modules, opts)
}

/// Like [`link`], but fills the kernel ELF bytes in place (no copy).
pub fn link_into(
    kernel_name: &str,
    mut image: Vec<u8>,
    modules: &[InputFile],
    opts: &LinkOptions,
) -> Result<LinkOutput> {
    let kernel = &image[..];
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
    let mut exports: HashMap<&[u8], Export> = HashMap::new();
    let mut closures: Vec<Vec<u32>> = Vec::with_capacity(n);
    let mut planned: Vec<Planned<'_>> = Vec::with_capacity(n);
    for (me, &input) in ord.order.iter().enumerate() {
        let me = me as u32;
        let obj = objs[input].take().unwrap();
        let mut layout = ModuleLayout::of(&obj);
        let mut deps: Vec<u16> = ord.deps[input].iter().map(|&d| slot_of[d] as u16).collect();
        deps.sort_unstable();
        let mut closure: Vec<u32> = Vec::new();
        for &d in &deps {
            closure.push(d as u32);
            closure.extend_from_slice(&closures[d as usize]);
        }
        closure.sort_unstable();
        closure.dedup();
        let env = SymbolEnv {
            kernel: &k.exports,
            exports: &exports,
            modules: &names,
        };
        let relocs = relocate::plan(me, &obj, &layout, &env, &closure)?;
        layout.add_got(relocs.got.len() as u64);
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
        planned.push(Planned {
            obj,
            layout,
            relocs,
            deps,
        });
    }
    let layouts: Vec<&ModuleLayout> = planned.iter().map(|p| &p.layout).collect();
    let slots = assign_slots(&layouts, &k.regions, opts.slot_align)?;
    let bases: Vec<PerClass<u64>> = slots
        .iter()
        .map(|s| PerClass([0, 1, 2].map(|c| k.regions.0[c].addr + s.off.0[c])))
        .collect();

    let ranges = [0, 1, 2, 3].map(|i| {
        let a: Area = if i < 3 { k.regions.0[i] } else { k.modtable };
        a.file_off as usize..(a.file_off + a.size) as usize
    });
    let [rt, rr, rd, mt] = image.get_disjoint_mut(ranges.clone()).map_err(|_| {
        err!(
            Kernel,
            "{kernel_name}: the module regions and {} overlap",
            crate::kernel::MODTABLE_SECTION
        )
    })?;
    let mut regions = PerClass([rt, rr, rd]);
    for r in regions.0.iter_mut() {
        r.fill(0);
    }
    let mut table_mods = Vec::with_capacity(n);
    let mut plan_mods = Vec::with_capacity(n);
    for (me, p) in planned.iter().enumerate() {
        let s = &slots[me];
        let [t, r, d] = &mut regions.0;
        let mut cls: PerClass<&mut [u8]> = PerClass([
            &mut t[s.off.0[0] as usize..(s.off.0[0] + p.layout.size.0[0]) as usize],
            &mut r[s.off.0[1] as usize..(s.off.0[1] + p.layout.size.0[1]) as usize],
            &mut d[s.off.0[2] as usize..(s.off.0[2] + p.layout.size.0[2]) as usize],
        ]);
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
        plan_mods.push(ModulePlan {
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
        });
        table_mods.push(TableModule {
            deps: p.deps.clone(),
            records,
        });
    }
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
    mt.fill(0);
    mt[..table.len()].copy_from_slice(&table);
    Ok(LinkOutput { image, plan })
}
