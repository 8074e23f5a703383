//! Writes a synthetic kernel ELF (see `prelinker::synth`) for benchmarks:
//! `cargo run -p prelinker --example synth_kernel -- OUT.elf [REGION_MIB]`.
//! It exports the whole module ABI and prints `--defsym` options for them,
//! one per line, on stdout (for linking the same modules with another linker).

use prelinker::synth::{KernelSpec, kernel_elf};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .expect("usage: synth_kernel OUT.elf [REGION_MIB]");
    let mib: u64 = args.next().map_or(2, |s| s.parse().expect("REGION_MIB"));
    let spec = KernelSpec {
        region_size: modtable::PerClass([mib << 20; 3]),
        // 16 bytes per recorded relocation: large module sets need more
        // than the kernel's 256 KiB.
        modtable_size: (mib / 2).max(1) << 20,
        ..KernelSpec::default()
    };
    std::fs::write(&out, kernel_elf(&spec)).expect("write");
    for (n, a) in &spec.exports {
        println!("--defsym={n}={a:#x}");
    }
}
