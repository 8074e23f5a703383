//! Allocate/free micro-benchmark of the frame allocator: a 1 GiB span,
//! half of it handed out in a mix of single frames, 8-frame runs and
//! 2 MiB-aligned 512-frame runs, freed in a scattered order, repeated.
//! Prints nanoseconds per operation (median of the rounds).
//!
//! `cargo run --release -p frames --example alloc_free`

use frames::{FrameAllocator, PhysAddr, bitmap_words};
use std::time::Instant;

fn main() {
    let nframes = (1u64 << 30) / 4096;
    let mut bits = vec![0u64; bitmap_words(nframes)];
    let mut a = FrameAllocator::new(&mut bits, PhysAddr(0), nframes).unwrap();
    a.add_range(PhysAddr(1 << 20), PhysAddr(1 << 30)).unwrap();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut per_op = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut held = Vec::new();
        let mut ops = 0u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        while a.free_count() > nframes / 2 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let (count, align) = match seed % 16 {
                0 => (512, 512),
                1..=4 => (8, 1),
                _ => (1, 1),
            };
            held.push((a.alloc(count, align).unwrap(), count));
            ops += 1;
            // Free one in four, scattered, as they come.
            if seed.is_multiple_of(4) {
                let i = (seed >> 8) as usize % held.len();
                let (p, n) = held.swap_remove(i);
                a.free(p, n).unwrap();
                ops += 1;
            }
        }
        for (p, n) in held.drain(..) {
            a.free(p, n).unwrap();
            ops += 1;
        }
        per_op.push(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    per_op.sort_by(f64::total_cmp);
    println!(
        "frames alloc/free: {:.1} ns per operation (median of {rounds} rounds; min {:.1}, max {:.1})",
        per_op[rounds / 2],
        per_op[0],
        per_op[rounds - 1]
    );
}
