//! The `link` step: prepare every module on its own (parse, lay out, lower
//! relocations; see [`crate::prepare`]), then order them, give each its
//! slots, resolve imports against the kernel's and earlier modules' exports,
//! relocate, and produce the plan and the bytes that change in the kernel
//! file: each module's used slot bytes and the module table. The command
//! line has each batch of modules written into the image file as soon as it
//! is relocated ([`link_files_streamed`]); the library's other entry points
//! return the bytes for the caller to write or apply.

use crate::Map;
use crate::arena::{self, Chunks, Loc};
use crate::elf::reloc_name;
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expectation;
use crate::image::ModuleSink;
use crate::input::{InputFile, ModuleObject, module_object_bytes};
use crate::kernel::{Area, Kernel};
use crate::layout::assign_slots;
use crate::order::{Node, order};
use crate::phases::Phases;
use crate::plan::{ModulePlan, Plan};
use crate::prepare::{Prepared, prepare_with, split_classes};
use crate::relocate::{self, Import, Local, Reloc};
use crate::symbols::{Export, Lookup, Resolved, SymbolEnv};
use crate::table_writer::{self, TableModule};
use crate::{bail, err};
use modtable::table::{Placement, Prediction, RelocGroups};
use modtable::{Class, PerClass};
use std::borrow::Cow;
use std::path::Path;

/// Default slot alignment: the kernel's packing alignment (one cache line),
/// so that with a correct expectation no kept module moves at boot.
pub const DEFAULT_SLOT_ALIGN: u64 = 64;

/// Options of the link step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkOptions {
    /// Alignment of every slot (a power of two; 4096 suits the `holes` policy).
    pub slot_align: u64,
    /// Which modules are expected to be kept; `None` keeps dependency and
    /// input order and records no prediction.
    pub expect: Option<Expectation>,
    /// Whether the plan records where each placed section of a module lies
    /// in its class ([`crate::plan::ModulePlan::sections`], which
    /// `--plan-json` writes for a debugger). The image is the same either
    /// way; without it a link makes about a hundred fewer allocations per
    /// module.
    pub record_sections: bool,
    /// Whether to print the wall-clock time of each phase of the link to
    /// stderr (for profiling: the command line sets it when
    /// `PRELINKER_TIMES` is set).
    pub times: bool,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            slot_align: DEFAULT_SLOT_ALIGN,
            expect: None,
            record_sections: true,
            times: false,
        }
    }
}

/// Bytes to write at an offset of the output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Offset in the file.
    pub file_off: u64,
    /// The bytes (see [`Prelinked::bytes`]).
    pub bytes: PatchBytes,
    /// Whether the link already wrote them into the image file (a module's
    /// class bytes, written through a [`ModuleSink`] as it was relocated).
    pub streamed: bool,
}

/// The bytes of a [`Patch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchBytes {
    /// Bytes of their own.
    Owned(Vec<u8>),
    /// `len` bytes at `loc` of the result's chunks (a class of a module).
    Chunk {
        /// Where they start.
        loc: Loc,
        /// How many.
        len: usize,
    },
}

/// The result of linking, as changes to the kernel file: every byte of the
/// `replaced` areas (the three class regions and the `.modtable` area) is
/// zero in the image except where a patch writes; everything else is the
/// kernel's own bytes.
#[derive(Debug)]
pub struct Prelinked {
    /// The layout plan.
    pub plan: Plan,
    /// File ranges `(start, end)` the image replaces, sorted and disjoint.
    pub replaced: Vec<(u64, u64)>,
    /// What is written inside them.
    pub patches: Vec<Patch>,
    /// The chunks holding the modules' class bytes that patches refer to.
    chunks: Vec<memmap2::MmapMut>,
    /// What is left of the prepared modules, freed with the result.
    _spent: Spent,
}

/// What is left of the prepared modules once they are linked (their
/// relocations, imports and metadata): kept with the result and freed with
/// it, at a time of the caller's choosing (the command line leaves them to
/// the process's exit), instead of being freed module by module by the
/// link's threads, whose frees of memory another thread allocated contend
/// with that thread's allocations (that alone made the relocation step
/// slower on two threads than on one).
#[derive(Clone, Default)]
struct Spent(Vec<Prepared>);

impl std::fmt::Debug for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} prepared modules>", self.0.len())
    }
}

impl Prelinked {
    /// The bytes patch `p` (one of [`Prelinked::patches`]) writes.
    pub fn bytes<'p>(&'p self, p: &'p Patch) -> &'p [u8] {
        match &p.bytes {
            PatchBytes::Owned(b) => b,
            PatchBytes::Chunk { loc, len } => &self.chunks[loc.chunk][loc.off..loc.off + len],
        }
    }

    /// The whole image, built in memory from the kernel's bytes.
    pub fn apply(&self, kernel: &[u8]) -> Vec<u8> {
        let mut image = kernel.to_vec();
        for &(s, e) in &self.replaced {
            image[s as usize..e as usize].fill(0);
        }
        for p in &self.patches {
            let at = p.file_off as usize;
            let bytes = self.bytes(p);
            image[at..at + bytes.len()].copy_from_slice(bytes);
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

/// Where the module objects came from, so that one can be parsed again to
/// name sections and symbols in an error message (prepared modules keep no
/// section or symbol names besides their imports', which keeps them small).
enum Source<'a> {
    /// Inputs already in memory.
    Memory(&'a [InputFile]),
    /// Files, read (in part) while preparing.
    Files(Vec<&'a Path>),
}

impl Source<'_> {
    /// Parses input `i` again and calls `f` on it; `None` if it cannot be
    /// read or parsed again (a file changed under us).
    fn with_object<R>(&self, i: usize, f: impl FnOnce(&ModuleObject<'_>) -> R) -> Option<R> {
        let (name, data): (String, Cow<'_, [u8]>) = match self {
            Source::Memory(m) => (m[i].name.clone(), Cow::Borrowed(&m[i].data)),
            Source::Files(p) => {
                let name = p[i].display().to_string();
                let mut buf = Vec::new();
                crate::input::read_module(p[i], &name, &mut buf).ok()?;
                (name, Cow::Owned(buf))
            }
        };
        let bytes = module_object_bytes(&name, &data).ok()?;
        let obj = ModuleObject::parse(&name, bytes).ok()?;
        Some(f(&obj))
    }

    /// The name of section `s` of input `i`, for messages.
    fn section_name(&self, i: usize, s: u32) -> String {
        self.with_object(i, |o| {
            o.elf.sections.get(s as usize).map(|x| x.name().to_string())
        })
        .flatten()
        .unwrap_or_else(|| format!("#{s}"))
    }
}

/// Checks the options and parses the kernel.
fn start(kernel_name: &str, kernel: &[u8], modules: usize, opts: &LinkOptions) -> Result<Kernel> {
    if !opts.slot_align.is_power_of_two() || opts.slot_align > 1 << 30 {
        bail!(
            Usage,
            "slot alignment {} is not a power of two (at most 1 GiB)",
            opts.slot_align
        );
    }
    let k = Kernel::parse(kernel_name, kernel)?;
    for c in Class::ALL {
        let r = k.regions[c];
        if r.addr < crate::kernel::CODE_MODEL_BASE || r.addr.checked_add(r.size).is_none() {
            bail!(
                Kernel,
                "{kernel_name}: the {} region ({}) is at {:#x} with {} bytes, not inside the top 2 GiB of the address space, where the kernel code model puts the kernel and its modules",
                c.name(),
                crate::kernel::REGION_SECTIONS[c.index()],
                r.addr,
                r.size
            );
        }
        if k.regions[c].size > u32::MAX as u64 {
            bail!(
                Kernel,
                "{kernel_name}: the {} region is larger than 4 GiB",
                c.name()
            );
        }
    }
    if modules > u16::MAX as usize + 1 {
        bail!(
            Usage,
            "{} modules: at most {} are supported",
            modules,
            u16::MAX as usize + 1
        );
    }
    Ok(k)
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
    let mut marks = Phases::new(opts.times, "  ");
    let k = start(kernel_name, kernel, modules.len(), opts)?;
    let chunks = Chunks::default();
    let prepared = crate::par::collect(crate::par::map_with(
        modules.iter().collect(),
        || chunks.arena(),
        |arena, _, f| prepare_with(&f.name, &f.data, opts.record_sections, arena),
    ))?;
    finish(
        kernel_name,
        kernel,
        k,
        prepared,
        chunks,
        &Source::Memory(modules),
        opts,
        None,
        {
            marks.mark("prepare the modules");
            marks
        },
    )
}

/// Like [`link_patches`], reading the module files itself: each is read
/// (only the parts the link uses) into a buffer that is reused for the next
/// file once the module is prepared, so the inputs are never all in memory.
pub fn link_files<P: AsRef<Path> + Sync>(
    kernel_name: &str,
    kernel: &[u8],
    paths: &[P],
    opts: &LinkOptions,
) -> Result<Prelinked> {
    link_files_to(kernel_name, kernel, paths, opts, None)
}

/// Like [`link_files`], writing each module's class bytes into the image
/// file behind `sink` as soon as they are relocated (see
/// [`crate::image::stage_image_streamed`]); the patches that holds are
/// marked [`Patch::streamed`].
pub fn link_files_streamed<P: AsRef<Path> + Sync>(
    kernel_name: &str,
    kernel: &[u8],
    paths: &[P],
    opts: &LinkOptions,
    sink: &ModuleSink<'_>,
) -> Result<Prelinked> {
    link_files_to(kernel_name, kernel, paths, opts, Some(sink))
}

fn link_files_to<P: AsRef<Path> + Sync>(
    kernel_name: &str,
    kernel: &[u8],
    paths: &[P],
    opts: &LinkOptions,
    sink: Option<&ModuleSink<'_>>,
) -> Result<Prelinked> {
    let mut marks = Phases::new(opts.times, "  ");
    let k = start(kernel_name, kernel, paths.len(), opts)?;
    let chunks = Chunks::default();
    let prepared = crate::par::collect(crate::par::map_with(
        paths.iter().collect(),
        || (crate::input::ModuleReader::default(), chunks.arena()),
        |(reader, arena), _, p: &P| {
            let p = p.as_ref();
            let name = p.display().to_string();
            let bytes = reader.read(p, &name)?;
            prepare_with(&name, bytes, opts.record_sections, arena)
        },
    ))?;
    marks.mark("read and prepare the modules");
    let source = Source::Files(paths.iter().map(AsRef::as_ref).collect());
    finish(
        kernel_name,
        kernel,
        k,
        prepared,
        chunks,
        &source,
        opts,
        sink,
        marks,
    )
}

/// A placement figure as the table stores it: slots lie in regions of at
/// most 4 GiB (checked when the regions are read), so every offset and
/// size inside them fits.
fn u32_of(v: u64) -> u32 {
    u32::try_from(v).expect("checked: regions are at most 4 GiB")
}

fn u32s(p: PerClass<u64>) -> PerClass<u32> {
    p.map(u32_of)
}

fn names_only<'a>(names: &[(&'a str, &str)]) -> Vec<&'a str> {
    names.iter().map(|n| n.0).collect()
}

/// The address a module-local target has once module `me` has its slots.
fn resolved(me: u32, l: Local, imports: &[Resolved]) -> Resolved {
    match l {
        Local::Abs(v) => Resolved::Abs(v),
        Local::In { class, off } => Resolved::In {
            module: me,
            class,
            off,
        },
        Local::Import(i) => imports[i as usize],
    }
}

/// Resolves the imports of module `p` (input `input`), with errors naming the
/// symbol and where it is first used.
fn resolve_imports(
    input: usize,
    p: &Prepared,
    env: &SymbolEnv<'_>,
    closure: &[u32],
    names: &[(&str, &str)],
    source: &Source<'_>,
) -> Result<Vec<Resolved>> {
    let first_use = |imp: &Import| {
        let (s, off, t) = imp.first_use;
        format!(
            "first referenced from section {} offset {off:#x} ({})",
            source.section_name(input, s),
            reloc_name(t)
        )
    };
    p.lowered
        .imports
        .iter()
        .map(|imp| {
            let name = p.lowered.import_name(imp);
            // The name as text is needed only for a message.
            let sym = || String::from_utf8_lossy(name);
            match env.lookup(name, imp.weak, closure) {
                Lookup::Found(r) => Ok(r),
                Lookup::Undeclared(m) => {
                    let (dname, dfile) = names[m as usize];
                    let sym = sym();
                    Err(Error::new(
                        ErrorKind::UndeclaredDependency,
                        format!(
                            "{}: module `{}` uses symbol `{sym}` exported by module `{dname}` ({dfile}) but does not declare depends={dname}, {}",
                            p.file,
                            p.info.name(),
                            first_use(imp)
                        ),
                    ))
                }
                Lookup::Undefined => Err(Error::new(
                    ErrorKind::UndefinedSymbol,
                    format!(
                        "{}: undefined symbol `{}` (not exported by the kernel or by a dependency of module `{}`), {}",
                        p.file,
                        sym(),
                        p.info.name(),
                        first_use(imp)
                    ),
                )),
            }
        })
        .collect()
}

/// An exported function's exporter, its file and the signature it records.
type ModuleSig = (String, String, Option<String>);

/// Checks that module `p` imports every function with the signature its
/// exporter records: a kernel service's hash from `.kexports`, another
/// module's `export_sig`. `module_sigs` maps an exported name to its
/// exporter's name, file and signature.
fn check_signatures(p: &Prepared, k: &Kernel, module_sigs: &Map<String, ModuleSig>) -> Result<()> {
    use modabi::{service_signature, signature_hash};
    let mismatch = |sym: &str, want: &str, have: String| {
        Error::new(
            ErrorKind::SignatureMismatch,
            format!(
                "{}: module `{}` imports `{sym}` as `{want}`, but {have}",
                p.file,
                p.info.name()
            ),
        )
    };
    for imp in &p.lowered.imports {
        let Ok(sym) = std::str::from_utf8(p.lowered.import_name(imp)) else {
            continue;
        };
        if let Some(&hash) = k.export_sigs.get(sym) {
            if hash == 0 {
                continue; // a C library function: the compiler fixes its signature
            }
            let Some(want) = p.info.import_sig(sym) else {
                bail!(
                    SignatureMismatch,
                    "{}: module `{}` imports kernel service `{sym}` but records no signature for it (built against another module API?)",
                    p.file,
                    p.info.name()
                );
            };
            if signature_hash(want) != hash {
                let kernel = match service_signature(sym) {
                    Some(t) if signature_hash(t) == hash => format!("the kernel exports `{t}`"),
                    _ => format!("the kernel exports it with signature hash {hash:#018x}"),
                };
                return Err(mismatch(sym, want, kernel));
            }
        } else if let Some((exporter, file, have)) = module_sigs.get(sym) {
            let Some(have) = have else {
                bail!(
                    SignatureMismatch,
                    "{file}: module `{exporter}` exports `{sym}` without a recorded signature (export it with export_fn!)"
                );
            };
            let Some(want) = p.info.import_sig(sym) else {
                bail!(
                    SignatureMismatch,
                    "{}: module `{}` imports `{sym}` from module `{exporter}` without a recorded signature (import it with import_fn!)",
                    p.file,
                    p.info.name()
                );
            };
            if signature_hash(want) != signature_hash(have) {
                return Err(mismatch(
                    sym,
                    want,
                    format!("module `{exporter}` ({file}) exports `{have}`"),
                ));
            }
        }
    }
    Ok(())
}

/// Orders the prepared modules, assigns slots, resolves, relocates and
/// builds the table.
#[allow(clippy::too_many_arguments)]
fn finish(
    kernel_name: &str,
    kernel: &[u8],
    k: Kernel,
    mut prepared: Vec<Prepared>,
    chunks: Chunks,
    source: &Source<'_>,
    opts: &LinkOptions,
    sink: Option<&ModuleSink<'_>>,
    mut marks: Phases,
) -> Result<Prelinked> {
    if let Some(e) = &opts.expect {
        e.check_known(prepared.iter().map(|p| p.info.name()))?;
    }
    let predict = |name: &str| opts.expect.as_ref().map(|e| e.predict(name));
    let nodes: Vec<Node<'_>> = prepared
        .iter()
        .map(|p| Node {
            file: &p.file,
            name: p.info.name(),
            depends: p.info.depends().collect(),
            expected_failure: predict(p.info.name()) == Some(Prediction::Expunged),
        })
        .collect();
    let ord = order(&nodes)?;
    drop(nodes);
    let n = ord.order.len();
    let mut slot_of = vec![0u32; n];
    for (s, &i) in ord.order.iter().enumerate() {
        slot_of[i] = s as u32;
    }
    // The modules in slot order, with their input index: references, so
    // that no module's record is moved (a thousand of them are a few
    // hundred KiB to copy, into memory that is new to the process).
    let mut by_input: Vec<Option<&mut Prepared>> = prepared.iter_mut().map(Some).collect();
    let slotted: Vec<(usize, &mut Prepared)> = ord
        .order
        .iter()
        .map(|&i| (i, by_input[i].take().expect("order is a permutation")))
        .collect();
    drop(by_input);
    let owned_names: Vec<(String, String)> = slotted
        .iter()
        .map(|(_, p)| (p.info.name().to_string(), p.file.clone()))
        .collect();
    let names: Vec<(&str, &str)> = owned_names
        .iter()
        .map(|(n, f)| (n.as_str(), f.as_str()))
        .collect();
    // In slot order: dependency closures and the exports every later module
    // may use.
    let mut exports: Map<Vec<u8>, Export> = Map::default();
    let mut closures: Vec<Vec<u32>> = Vec::with_capacity(n);
    let mut deps: Vec<Vec<u16>> = Vec::with_capacity(n);
    for (me, (input, p)) in slotted.iter().enumerate() {
        let me = me as u32;
        let mut d: Vec<u16> = ord.deps[*input]
            .iter()
            .map(|&d| slot_of[d] as u16)
            .collect();
        d.sort_unstable();
        let mut closure: Vec<u32> = Vec::new();
        for &x in &d {
            closure.push(x as u32);
            closure.extend_from_slice(&closures[x as usize]);
        }
        closure.sort_unstable();
        closure.dedup();
        for (e, &at) in p.info.exports().zip(&p.exports) {
            if k.exports.contains_key(e) {
                bail!(
                    DuplicateExport,
                    "{}: module `{}` exports `{e}`, which the kernel already exports",
                    p.file,
                    p.info.name()
                );
            }
            if let Some(prev) = exports.get(e.as_bytes()) {
                let (pn, pf) = names[prev.module as usize];
                bail!(
                    DuplicateExport,
                    "symbol `{e}` is exported by two modules: `{pn}` ({pf}) and `{}` ({})",
                    p.info.name(),
                    p.file
                );
            }
            let target = resolved(me, at, &[]);
            exports.insert(e.as_bytes().to_vec(), Export { module: me, target });
        }
        closures.push(closure);
        deps.push(d);
    }
    let layouts: Vec<&crate::layout::ModuleLayout> =
        slotted.iter().map(|(_, p)| &p.layout).collect();
    let slots = assign_slots(&layouts, &names_only(&names), &k.regions, opts.slot_align)
        .map_err(|e| e.context(kernel_name))?;
    drop(layouts);
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
    marks.mark("order the modules and assign slots");
    let env = SymbolEnv {
        kernel: &k.exports,
        exports: &exports,
    };
    // Exported name -> (exporter, its file, the signature it records).
    let module_sigs: Map<String, ModuleSig> = slotted
        .iter()
        .flat_map(|(_, p)| {
            p.info.exports().map(move |e| {
                (
                    e.to_string(),
                    (
                        p.info.name().to_string(),
                        p.file.clone(),
                        p.info.export_sig(e).map(String::from),
                    ),
                )
            })
        })
        .collect();
    // In parallel: resolve, relocate, checksum and record each module.
    // Errors are reported for the first module in slot order. The prepared
    // modules stay where they are, to be kept with the result (see `Spent`).
    let mut maps = chunks.into_maps();
    let sizes: Vec<PerClass<usize>> = slotted
        .iter()
        .map(|(_, p)| p.layout.size.map(|s| s as usize))
        .collect();
    let ranges: Vec<(Loc, usize)> = slotted
        .iter()
        .map(|(_, p)| (p.image, p.lists.end()))
        .collect();
    let work: Vec<((usize, &mut Prepared), &mut [u8])> = slotted
        .into_iter()
        .zip(arena::split(&mut maps, &ranges))
        .collect();
    // Each worker decodes a module's relocations and targets into buffers
    // of its own, reused from module to module.
    type Decoded = (Vec<Reloc>, Vec<(Local, u32)>);
    let relocate_one = |me: usize,
                        (input, p): (usize, &mut Prepared),
                        bytes: &mut [u8],
                        (relocs, local): &mut Decoded|
     -> Result<_> {
        let me32 = me as u32;
        let imports = resolve_imports(input, p, &env, &closures[me], &names, source)?;
        check_signatures(p, &k, &module_sigs)?;
        let (class_bytes, lists) = bytes.split_at_mut(p.lists.at);
        relocs.clear();
        relocs.extend(p.lists.relocs(lists));
        local.clear();
        local.extend(p.lists.targets(lists));
        let targets: Vec<Resolved> = local
            .iter()
            .map(|&(l, _)| resolved(me32, l, &imports))
            .collect();
        let class_len: usize = sizes[me].0.iter().sum();
        let mut image = split_classes(&mut class_bytes[..class_len], sizes[me]);
        relocate::apply(me32, relocs, &targets, &mut image, &bases).map_err(|e| {
            source
                .with_object(input, |o| {
                    // The section offsets, which the prepared module does
                    // not keep.
                    let mut layout = crate::layout::ModuleLayout::of(o);
                    layout.add_got(p.layout.got_entries);
                    relocate::apply_error_message(o, relocs, local, &layout, &e)
                })
                .unwrap_or_else(|| {
                    err!(
                        Malformed,
                        "{}: relocation {} of the module cannot be applied: {}",
                        p.file,
                        e.index,
                        e.error
                    )
                })
        })?;
        let checksum = modtable::checksum::module_checksum([
            &image.0[0][..],
            &image.0[1][..],
            &image.0[2][..],
        ]);
        let recorded = RelocGroups::new(relocs.iter().filter_map(|r| {
            let t = targets[r.target as usize];
            relocate::must_record(me32, r, t).then(|| relocate::field(r, t))
        }));
        let plan_mod = ModulePlan {
            name: p.info.name().to_string(),
            file: Some(p.file.clone()),
            deps: deps[me]
                .iter()
                .map(|&d| names[d as usize].0.to_string())
                .collect(),
            addr: bases[me],
            placement: Placement {
                slot_off: u32s(slots[me].off),
                slot_size: u32s(slots[me].size),
                size: u32s(p.layout.size),
                align: u32s(p.layout.align),
                bss_size: u32_of(p.layout.bss_size),
                percpu_off: u32_of(p.layout.percpu_off),
                percpu_size: u32_of(p.layout.percpu_size),
                probe_off: u32_of(p.probe_off),
                selftest_off: p.selftest_off.map(u32_of),
                checksum,
                predicted: predict(p.info.name()),
            },
            relocs_applied: Some(relocs.len() as u64 + p.applied_early),
            relocs_recorded: recorded.len() as u64,
            got_entries: Some(p.layout.got_entries),
            sections: std::mem::take(&mut p.sections),
        };
        Ok((
            plan_mod,
            TableModule {
                deps: deps[me].clone(),
                relocs: recorded,
            },
        ))
    };
    // Module `me`'s non-empty classes: where each goes in the file, and its
    // offset and length in the module's class bytes.
    let (sizes_of, regions, slots_of) = (&sizes, &k.regions, &slots);
    let class_runs = move |me: usize| {
        let mut at = 0;
        Class::ALL.into_iter().filter_map(move |c| {
            let (start, len) = (at, sizes_of[me][c]);
            at += len;
            (len > 0).then(|| (regions[c].file_off + slots_of[me].off[c], start, len))
        })
    };
    // Batch by batch; with a sink, each batch's bytes are written out as
    // soon as they are relocated, while the other workers go on (or left
    // for the next write while another is under way).
    let waiting = std::sync::Mutex::new(Vec::new());
    let filled = crate::par::map_batches_with(
        work,
        || (Vec::new(), Vec::new()),
        |lists, start, batch| {
            let (items, mut bytes): (Vec<_>, Vec<&mut [u8]>) = batch.into_iter().unzip();
            let done: Vec<Result<_>> = items
                .into_iter()
                .zip(bytes.iter_mut())
                .enumerate()
                .map(|(j, (w, b))| relocate_one(start + j, w, b, lists))
                .collect();
            if let Some(sink) = sink {
                // Relocated: from here on only read.
                let bytes: Vec<&[u8]> = bytes.into_iter().map(|b| -> &[u8] { b }).collect();
                let mut parts: Vec<(u64, &[u8])> = Vec::with_capacity(3 * done.len());
                for (j, (d, bytes)) in done.iter().zip(bytes).enumerate() {
                    if d.is_err() {
                        continue;
                    }
                    parts.extend(
                        class_runs(start + j).map(|(off, at, len)| (off, &bytes[at..at + len])),
                    );
                }
                sink.write(&replaced, &waiting, parts);
            }
            done
        },
    );
    if let Some(sink) = sink {
        sink.flush(&replaced, waiting);
    }
    let filled = crate::par::collect(filled)?;
    marks.mark(if sink.is_some() {
        "relocate, checksum and write the modules"
    } else {
        "relocate and checksum the modules"
    });
    let mut patches: Vec<Patch> = Vec::with_capacity(3 * n + 1);
    let mut plan_mods = Vec::with_capacity(n);
    let mut table_mods = Vec::with_capacity(n);
    for (me, (pm, tm)) in filled.into_iter().enumerate() {
        let image = ranges[me].0;
        for (file_off, at, len) in class_runs(me) {
            let loc = Loc {
                off: image.off + at,
                ..image
            };
            patches.push(Patch {
                file_off,
                bytes: PatchBytes::Chunk { loc, len },
                streamed: sink.is_some(),
            });
        }
        plan_mods.push(pm);
        table_mods.push(tm);
    }
    let plan = Plan {
        slot_align: opts.slot_align,
        regions: k.regions,
        kernel_end: Some(k.kernel_end),
        modules: plan_mods,
    };
    let mut table = table_writer::build(&plan, table_mods);
    table_writer::append_exports(&mut table, &exports, &|name| {
        let (_, _, sig) = module_sigs.get(name)?;
        sig.as_deref().map(modabi::signature_hash)
    });
    if table.len() as u64 > k.modtable.size {
        bail!(
            TableOverflow,
            "{kernel_name}: the module table and its export list need {} bytes but {} has only {} bytes",
            table.len(),
            crate::kernel::MODTABLE_SECTION,
            k.modtable.size
        );
    }
    patches.push(Patch {
        file_off: k.modtable.file_off,
        bytes: PatchBytes::Owned(table),
        streamed: false,
    });
    marks.mark("build the table");
    Ok(Prelinked {
        plan,
        replaced,
        patches,
        chunks: maps,
        _spent: Spent(prepared),
    })
}
