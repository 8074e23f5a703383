//! `mkinitrd --output OUT [NAME=]FILE...`: packs module objects into one
//! initrd archive (format: the `initrd` crate). An entry is named `NAME`, or
//! after its file without the `.o` extension.

use std::path::Path;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: mkinitrd --output OUT [NAME=]FILE...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut output = None;
    let mut inputs: Vec<(String, String)> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" | "--output" => match args.next() {
                Some(o) => output = Some(o),
                None => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => {
                let (name, file) = match a.split_once('=') {
                    Some((n, f)) => (n.to_string(), f.to_string()),
                    None => {
                        let stem = Path::new(&a)
                            .file_name()
                            .and_then(|f| f.to_str())
                            .map(|f| f.strip_suffix(".o").unwrap_or(f).to_string())
                            .unwrap_or_default();
                        (stem, a.clone())
                    }
                };
                inputs.push((name, file));
            }
        }
    }
    let Some(output) = output else {
        return usage();
    };
    let mut data = Vec::with_capacity(inputs.len());
    for (name, file) in &inputs {
        match std::fs::read(file) {
            Ok(d) => data.push((name.as_str(), d)),
            Err(e) => {
                eprintln!("mkinitrd: {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let entries: Vec<initrd::Entry<'_>> = data
        .iter()
        .map(|(name, d)| initrd::Entry { name, data: d })
        .collect();
    let bytes = match initrd::build(&entries) {
        Ok(b) => b,
        Err(e) => {
            let name = match &e {
                initrd::Error::BadName { index } | initrd::Error::Duplicate { index } => {
                    entries[*index as usize].name
                }
                _ => "",
            };
            eprintln!("mkinitrd: {e} (`{name}`)");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&output, &bytes) {
        eprintln!("mkinitrd: {output}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "mkinitrd: {} objects, {} bytes -> {output}",
        entries.len(),
        bytes.len()
    );
    ExitCode::SUCCESS
}
