//! `prelinker` command line: `link`, `extract`, `inspect`, `report`,
//! `expect` and `sizes`.

use prelinker::error::{Error, ErrorKind, Result};
use prelinker::image::{discard_old, write_atomic, write_image};
use prelinker::input::{InputFile, module_object_bytes};
use prelinker::link::link_files;
use prelinker::{LinkOptions, err};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  prelinker link --kernel KERNEL.elf --output IMAGE.elf [--slot-align N] [--expect FILE] [--plan-json FILE] MODULE...
  prelinker expect BOOT.log --output FILE
  prelinker extract LIB.a --output X.o
  prelinker inspect IMAGE [--json]
  prelinker report BOOT.log [--svg MAP.svg]
  prelinker sizes IMAGE [MODULE.o...] [--json] [--top N] [--baseline FILE] [--write-baseline FILE]";

fn usage(msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Usage, format!("{msg}\n{USAGE}"))
}

/// Parsed `(name, value)` options.
type Options = Vec<(String, String)>;

/// Parses `--flag VALUE`/`--flag=VALUE` options; returns (options, positional).
fn parse_args(
    args: &[String],
    with_value: &[&str],
    switches: &[&str],
) -> Result<(Options, Vec<String>)> {
    let (mut opts, mut pos) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix("--").filter(|f| !f.is_empty()) {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if with_value.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| usage(format!("--{name} needs a value")))?,
                };
                opts.push((name.to_string(), v));
            } else if switches.contains(&name) && inline.is_none() {
                opts.push((name.to_string(), String::new()));
            } else {
                return Err(usage(format!("unknown option {a}")));
            }
        } else if a == "--" {
            pos.extend(it.by_ref().cloned());
        } else {
            pos.push(a.clone());
        }
    }
    Ok((opts, pos))
}

fn opt<'a>(opts: &'a [(String, String)], name: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find(|o| o.0 == name)
        .map(|o| o.1.as_str())
}

fn parse_size(s: &str) -> Result<u64> {
    let v = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    };
    v.ok_or_else(|| usage(format!("bad number {s}")))
}

/// Wall-clock time of each phase of `link`, printed to stderr when the
/// environment variable `PRELINKER_TIMES` is set (for profiling).
struct Phases {
    on: bool,
    last: std::time::Instant,
    marks: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            on: std::env::var_os("PRELINKER_TIMES").is_some(),
            last: std::time::Instant::now(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) {
        if self.on {
            let now = std::time::Instant::now();
            self.marks.push((what, now - self.last));
            self.last = now;
        }
    }

    fn report(&self) {
        for (what, d) in &self.marks {
            eprintln!("prelinker: {what}: {:.3} ms", d.as_secs_f64() * 1e3);
        }
    }
}

fn cmd_link(args: &[String]) -> Result<()> {
    let (opts, modules) = parse_args(
        args,
        &["kernel", "output", "slot-align", "plan-json", "expect"],
        &[],
    )?;
    let kernel = opt(&opts, "kernel").ok_or_else(|| usage("link needs --kernel"))?;
    let output = PathBuf::from(opt(&opts, "output").ok_or_else(|| usage("link needs --output"))?);
    let slot_align = opt(&opts, "slot-align")
        .map(parse_size)
        .transpose()?
        .unwrap_or(prelinker::link::DEFAULT_SLOT_ALIGN);
    let expect = match opt(&opts, "expect") {
        None => None,
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::new(ErrorKind::Io, format!("{f}: cannot read: {e}")))?;
            Some(prelinker::expect::Expectation::parse(f, &text)?)
        }
    };
    let plan_json = opt(&opts, "plan-json").map(PathBuf::from);
    let result = (|| {
        let mut phases = Phases::new();
        let _old = discard_old(&output);
        let k = prelinker::kernel::read_kernel(Path::new(kernel))?;
        phases.mark("read kernel");
        let out = link_files(
            &k.name,
            &k.data,
            &modules,
            &LinkOptions { slot_align, expect },
        )?;
        phases.mark("read and link modules");
        if let Some(p) = &plan_json {
            let mut s = serde_json::to_string_pretty(&out.plan.to_json()).expect("JSON");
            s.push('\n');
            write_atomic(p, s.as_bytes())?;
            phases.mark("write plan");
        }
        write_image(&output, &k.data, &out)?;
        phases.mark("write image");
        phases.report();
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
        Ok(())
    })();
    if result.is_err() {
        // A stale image from an earlier run must not survive a failed link.
        let _ = std::fs::remove_file(&output);
        if let Some(p) = &plan_json {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn cmd_extract(args: &[String]) -> Result<()> {
    let (opts, pos) = parse_args(args, &["output"], &[])?;
    let [lib] = pos.as_slice() else {
        return Err(usage("extract needs exactly one archive"));
    };
    let output =
        PathBuf::from(opt(&opts, "output").ok_or_else(|| usage("extract needs --output"))?);
    let f = InputFile::read(Path::new(lib))?;
    if !f.data.starts_with(b"!<arch>\n") {
        return Err(err!(Archive, "{}: not an ar archive", f.name));
    }
    let bytes = module_object_bytes(&f.name, &f.data)?;
    write_atomic(&output, bytes)
}

fn cmd_inspect(args: &[String]) -> Result<()> {
    let (opts, pos) = parse_args(args, &[], &["json"])?;
    let [img] = pos.as_slice() else {
        return Err(usage("inspect needs exactly one image"));
    };
    let f = InputFile::read(Path::new(img))?;
    let plan = prelinker::inspect::inspect(&f.name, &f.data)?;
    if opt(&opts, "json").is_some() {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan.to_text());
    }
    Ok(())
}

fn cmd_report(args: &[String]) -> Result<()> {
    let (opts, pos) = parse_args(args, &["svg"], &[])?;
    let [log] = pos.as_slice() else {
        return Err(usage("report needs exactly one boot log"));
    };
    let text = std::fs::read_to_string(log)
        .map_err(|e| Error::new(ErrorKind::Io, format!("{log}: {e}")))?;
    let r = prelinker::report::parse_log(log, &text)?;
    if let Some(p) = opt(&opts, "svg") {
        write_atomic(Path::new(p), prelinker::report::svg(&r)?.as_bytes())?;
    }
    print!("{}", prelinker::report::table(&r));
    Ok(())
}

fn cmd_expect(args: &[String]) -> Result<()> {
    let (opts, pos) = parse_args(args, &["output"], &[])?;
    let [log] = pos.as_slice() else {
        return Err(usage("expect needs exactly one boot log"));
    };
    let output = PathBuf::from(opt(&opts, "output").ok_or_else(|| usage("expect needs --output"))?);
    let bytes = std::fs::read(log).map_err(|e| Error::new(ErrorKind::Io, format!("{log}: {e}")))?;
    let r = prelinker::report::parse_log(log, &String::from_utf8_lossy(&bytes))?;
    write_atomic(&output, prelinker::expect::from_report(log, &r)?.as_bytes())
}

fn cmd_sizes(args: &[String]) -> Result<()> {
    let (opts, pos) = parse_args(args, &["top", "baseline", "write-baseline"], &["json"])?;
    let [image, objects @ ..] = pos.as_slice() else {
        return Err(usage("sizes needs an image"));
    };
    let o = prelinker::sizes::Options {
        image: image.clone(),
        objects: objects.to_vec(),
        json: opt(&opts, "json").is_some(),
        top: opt(&opts, "top").map(parse_size).transpose()?.unwrap_or(5) as usize,
        baseline: opt(&opts, "baseline").map(String::from),
        write_baseline: opt(&opts, "write-baseline").map(String::from),
    };
    prelinker::sizes::run(&o, &mut std::io::stdout().lock())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("link") => cmd_link(&args[1..]),
        Some("extract") => cmd_extract(&args[1..]),
        Some("inspect") => cmd_inspect(&args[1..]),
        Some("report") => cmd_report(&args[1..]),
        Some("expect") => cmd_expect(&args[1..]),
        Some("sizes") => cmd_sizes(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(usage("missing or unknown command")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prelinker: error: {e}");
            ExitCode::FAILURE
        }
    }
}
