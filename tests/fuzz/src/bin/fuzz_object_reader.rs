//! Fuzzes the prelinker's module object reader and per-module preparation
//! (`prelinker::prepare::prepare`: ELF parsing, `.modinfo`, layout,
//! relocation lowering) with mutations of the real module objects in
//! `build/modules/`. `FUZZ_SECONDS` (default 20), `FUZZ_SEED`.

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
