//! Fuzzes the prelinker's module object reader and per-module preparation
//! (`prelinker::prepare::prepare`: ELF parsing, `.modinfo`, layout,
//! relocation lowering) with mutations of the real module objects in
//! `build/modules/`, and links each object that prepares against the real
//! kernel (`build/kernel.elf`) with the `pci` module (slots, resolution,
//! relocation, the table). `FUZZ_SECONDS` (default 20), `FUZZ_SEED`.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/modules");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make modules`)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no module objects in {}", dir.display());
    let build = dir.parent().expect("build/modules has a parent");
    let read = |p: std::path::PathBuf| {
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run `make image`)", p.display()))
    };
    let kernel = read(build.join("kernel.elf"));
    let pci = prelinker::InputFile {
        name: "pci.o".into(),
        data: read(dir.join("pci.o")),
    };
    let seed = fuzz_targets::seed();
    let prepared = std::sync::atomic::AtomicU64::new(0);
    let r = fuzz_targets::run(
        "object_reader",
        &seeds,
        fuzz_targets::time(20),
        seed,
        &|input| {
            let chunks = prelinker::arena::Chunks::default();
            if prelinker::prepare::prepare("fuzz.o", input, &mut chunks.arena()).is_ok() {
                prepared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mods = [
                    pci.clone(),
                    prelinker::InputFile {
                        name: "fuzz.o".into(),
                        data: input.to_vec(),
                    },
                ];
                let _ = prelinker::link_patches(
                    "kernel.elf",
                    &kernel,
                    &mods,
                    &prelinker::LinkOptions::default(),
                );
            }
        },
    );
    match r {
        Ok(n) => println!(
            "fuzz_object_reader: {n} inputs ({} prepared without error), no crash (seed {seed})",
            prepared.into_inner()
        ),
        Err(p) => {
            eprintln!(
                "fuzz_object_reader: CRASH (seed {seed}); input kept in {}",
                p.display()
            );
            std::process::exit(1);
        }
    }
}
