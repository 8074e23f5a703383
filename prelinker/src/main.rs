//! `prelinker` command line: `link`, `extract`, `inspect`, `report`,
//! `expect` and `sizes`,
//! parsed with clap. Exit status: 0 on success, 1 for a link or input error,
//! 2 for a usage error (see [`EXIT_STATUS`]). Inputs are limited to
//! [`MAX_INPUT_SIZE`] bytes.

use clap::{Args, Parser, Subcommand};
use prelinker::error::{ErrorKind, Result};
use prelinker::image::{check_outputs, hold_old_output, stage, stage_image_streamed, write_atomic};
use prelinker::input::{AR_MAGIC, InputFile, MAX_INPUT_SIZE, module_object_bytes};
use prelinker::link::link_files_streamed;
use prelinker::phases::Phases;
use prelinker::{LinkOptions, err};
use std::path::PathBuf;
use std::process::ExitCode;

/// What every `--help` says about the exit status.
const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  link or input error (an input is missing, malformed or does not link,
     or `sizes` finds a module over its budget, or an object not in the
     image, given twice or not the one it was linked from; no output is
     written)
  2  usage error (a bad command line, or an output that is an input, a link
     to one, the other output, not a regular file or a symbolic link to
     nothing; nothing is touched; a link to a file is written through)";

/// What every `--help` ends with: the input limits and the exit status.
fn after_help() -> String {
    format!(
        "Inputs (kernel, modules, archives, images, boot logs) must be regular files of\n\
         at most {MAX_INPUT_SIZE} bytes ({} MiB); a module object is read only in the\n\
         parts the link uses.\n\n{EXIT_STATUS}",
        MAX_INPUT_SIZE >> 20
    )
}

/// Exit status of a link or input error.
const EXIT_ERROR: u8 = 1;
/// Exit status of a usage error (clap uses the same for its own).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "prelinker",
    version,
    about = "Prelinks module objects into the module regions of a kernel image",
    after_help = after_help(),
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lays the modules out in the kernel's module regions, resolves and
    /// relocates them and writes the bootable image with its module table.
    #[command(after_help = after_help(), args_override_self = true)]
    Link(LinkArgs),
    /// Writes the one member of a staticlib archive that is a module object.
    #[command(after_help = after_help(), args_override_self = true)]
    Extract(ExtractArgs),
    /// Verifies the module table and every module's checksum in an image,
    /// as the kernel does at boot, and prints the prelinked layout.
    #[command(after_help = after_help(), args_override_self = true)]
    Inspect(InspectArgs),
    /// Prints the reclaimed-memory report of a saved boot log (its REPORT
    /// line) and optionally draws the region map.
    #[command(after_help = after_help(), args_override_self = true)]
    Report(ReportArgs),
    /// Writes an expectation for `link --expect` from a saved boot log: the
    /// modules that boot kept, one name a line.
    #[command(after_help = after_help(), args_override_self = true)]
    Expect(ExpectArgs),
    /// Prints each module's used and slot bytes per class and its largest
    /// symbols, or compares them with a baseline (bloat-o-meter style) and
    /// fails when a module grew past its budget: max(5 % of its baseline
    /// size, 1024 bytes) per class.
    #[command(after_help = after_help(), args_override_self = true)]
    Sizes(SizesArgs),
}

#[derive(Args)]
struct LinkArgs {
    /// The kernel ELF, with empty module regions (or an image prelinked
    /// before: its regions and table are replaced).
    #[arg(long, value_name = "KERNEL.elf")]
    kernel: PathBuf,
    /// Where the image is written.
    #[arg(long, value_name = "IMAGE.elf")]
    output: PathBuf,
    /// Alignment of every slot, a power of two (decimal or 0x hex). The
    /// default is the kernel's packing alignment, so that with a correct
    /// expectation nothing moves at boot; 4096 suits the `holes` policy.
    #[arg(long, value_name = "N", default_value_t = prelinker::link::DEFAULT_SLOT_ALIGN, value_parser = parse_size)]
    slot_align: u64,
    /// Modules expected to be kept, one name a line (`#` comments): they
    /// get the first slots (dependency order kept), the others the last.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Also write the layout plan as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    plan_json: Option<PathBuf>,
    /// Module objects, or staticlib archives with one module member each.
    #[arg(value_name = "MODULE")]
    modules: Vec<PathBuf>,
}

#[derive(Args)]
struct ExtractArgs {
    /// The staticlib archive.
    #[arg(value_name = "LIB.a")]
    lib: PathBuf,
    /// Where the module object is written.
    #[arg(long, value_name = "X.o")]
    output: PathBuf,
}

#[derive(Args)]
struct InspectArgs {
    /// A prelinked image.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// Print the plan as JSON: the format of `link --plan-json`, without
    /// what only the link knows (each module's `file`, `relocs_applied`,
    /// `relocs_skipped`, `got_entries` and `sections`, and the totals'
    /// `relocs_applied`).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExpectArgs {
    /// A saved boot log with the kernel's REPORT line.
    #[arg(value_name = "BOOT.log")]
    log: PathBuf,
    /// Where the expectation is written.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct SizesArgs {
    /// A prelinked image.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// The module objects, for their symbols.
    #[arg(value_name = "MODULE.o")]
    objects: Vec<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Symbols listed per module.
    #[arg(long, value_name = "N", default_value_t = 5)]
    top: usize,
    /// Compare with this baseline and fail past the budget.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write the sizes to FILE as the new baseline.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// A saved boot log with the kernel's REPORT line.
    #[arg(value_name = "BOOT.log")]
    log: PathBuf,
    /// Also draw the region map (before and after) as SVG to MAP.svg.
    #[arg(long, value_name = "MAP.svg")]
    svg: Option<PathBuf>,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let v = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    };
    v.ok_or_else(|| format!("bad number {s}"))
}

fn cmd_link(a: &LinkArgs) -> Result<()> {
    let output = &a.output;
    let mut inputs = vec![("the kernel", a.kernel.as_path())];
    inputs.extend(a.modules.iter().map(|m| ("the module input", m.as_path())));
    inputs.extend(a.expect.iter().map(|e| ("the expectation", e.as_path())));
    let mut outputs = vec![("--output", output.as_path())];
    outputs.extend(a.plan_json.iter().map(|p| ("--plan-json", p.as_path())));
    check_outputs(&inputs, &outputs)?;
    let mut phases = Phases::new(std::env::var_os("PRELINKER_TIMES").is_some(), "");
    // An earlier image stays as it is until the new one has replaced it; a
    // failed link leaves it (and an earlier plan) untouched.
    let old = hold_old_output(output);
    let k = prelinker::kernel::read_kernel(&a.kernel)?;
    phases.mark("read kernel");
    let expect = match &a.expect {
        None => None,
        Some(p) => {
            let f = InputFile::read(p)?;
            let text = std::str::from_utf8(&f.data)
                .map_err(|e| err!(Expectation, "{}: not UTF-8 text: {e}", f.name))?;
            Some(prelinker::expect::Expectation::parse(&f.name, text)?)
        }
    };
    let opts = LinkOptions {
        slot_align: a.slot_align,
        expect,
        // Only the plan written with --plan-json shows the sections.
        record_sections: a.plan_json.is_some(),
        times: phases.on(),
    };
    // The modules' bytes are written into the image as they are relocated.
    let (image, out) = stage_image_streamed(output, &k.data, |sink| {
        link_files_streamed(&k.name, &k.data, &a.modules, &opts, sink)
    })?;
    phases.mark("read, link and write modules");
    let plan = match &a.plan_json {
        Some(p) => {
            let mut s = serde_json::to_string_pretty(&out.plan.to_json()).expect("JSON");
            s.push('\n');
            let staged = stage(p, s.as_bytes())?;
            phases.mark("write plan");
            Some(staged)
        }
        None => None,
    };
    image.commit()?;
    let _closing = old.close_in_background();
    if let Some(p) = plan {
        p.commit()?;
    }
    phases.mark("rename into place");
    let t = out.plan.totals();
    eprintln!(
        "prelinker: {} modules, {} bytes used in {} bytes of slots (page-aligned layout: {}), {} relocations recorded -> {}",
        out.plan.modules.len(),
        t.used.total(),
        t.slots.total(),
        t.page_aligned.total(),
        t.relocs_recorded,
        output.display()
    );
    // The process ends next: freeing the link's buffers (a few per module,
    // thousands in all) one by one would only cost time.
    std::mem::forget(out);
    std::mem::forget(k);
    Ok(())
}

fn cmd_extract(a: &ExtractArgs) -> Result<()> {
    check_outputs(&[("the archive", &a.lib)], &[("--output", &a.output)])?;
    let f = InputFile::read_with_magic(&a.lib, AR_MAGIC, "an ar archive")?;
    let bytes = module_object_bytes(&f.name, &f.data)?;
    write_atomic(&a.output, bytes)
}

/// Writes `s` to stdout; a reader that went away (a closed pipe) is not an
/// error.
fn print_out(s: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err!(Io, "standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn cmd_inspect(a: &InspectArgs) -> Result<()> {
    let f = InputFile::read_with_magic(&a.image, &object::elf::ELFMAG, "an ELF file")?;
    let plan = prelinker::inspect::inspect(&f.name, &f.data)?;
    if a.json {
        print_out(&format!("{}\n", plan.to_json()))
    } else {
        print_out(&format!(
            "{}checksums verified: the module table and {} modules\n",
            plan.to_text(),
            plan.modules.len()
        ))
    }
}

fn cmd_report(a: &ReportArgs) -> Result<()> {
    if let Some(svg) = &a.svg {
        check_outputs(&[("the boot log", &a.log)], &[("--svg", svg)])?;
    }
    let f = InputFile::read(&a.log)?;
    let r = prelinker::report::parse_log(&f.name, &f.data)?;
    if let Some(p) = &a.svg {
        write_atomic(p, prelinker::report::svg(&r)?.as_bytes())?;
    }
    print_out(&prelinker::report::table(&r))
}

fn cmd_expect(a: &ExpectArgs) -> Result<()> {
    check_outputs(&[("the boot log", &a.log)], &[("--output", &a.output)])?;
    let f = InputFile::read(&a.log)?;
    let r = prelinker::report::parse_log(&f.name, &f.data)?;
    write_atomic(
        &a.output,
        prelinker::expect::from_report(&f.name, &r).as_bytes(),
    )
}

fn cmd_sizes(a: &SizesArgs) -> Result<()> {
    if let Some(w) = &a.write_baseline {
        let mut inputs = vec![("the image", a.image.as_path())];
        inputs.extend(a.objects.iter().map(|o| ("the module object", o.as_path())));
        inputs.extend(a.baseline.iter().map(|b| ("--baseline", b.as_path())));
        check_outputs(&inputs, &[("--write-baseline", w)])?;
    }
    let path = |p: &PathBuf| p.display().to_string();
    let o = prelinker::sizes::Options {
        image: path(&a.image),
        objects: a.objects.iter().map(path).collect(),
        json: a.json,
        top: a.top,
        baseline: a.baseline.as_ref().map(path),
        write_baseline: a.write_baseline.as_ref().map(path),
    };
    let mut out = Vec::new();
    let r = prelinker::sizes::run(&o, &mut out);
    print_out(&String::from_utf8_lossy(&out))?;
    r
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0, errors to stderr
            // with status 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let (name, r) = match &cli.command {
        Command::Link(a) => ("link", cmd_link(a)),
        Command::Extract(a) => ("extract", cmd_extract(a)),
        Command::Inspect(a) => ("inspect", cmd_inspect(a)),
        Command::Report(a) => ("report", cmd_report(a)),
        Command::Expect(a) => ("expect", cmd_expect(a)),
        Command::Sizes(a) => ("sizes", cmd_sizes(a)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::Usage => {
            eprintln!("prelinker: error: {e}\n(see `prelinker {name} --help`)");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("prelinker: error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
