//! A native probe of how fast the host runs code at the moment, taken at
//! the start and end of each section beside the load.
//!
//! The load inside a VM does not show a busy host: on the development VMs
//! the steal time stays at zero while code bound by throughput (a memmove,
//! the checksum's independent lanes) runs at half its usual speed and code
//! bound by latency (a serial multiply chain) only a little slower. The
//! probe measures one of each, so that a section's figures can be read
//! against the state of the host they were taken on.

use crate::util::median;
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Instant;

/// Bytes of the copy: in the cache after the first copy.
const COPY_BYTES: usize = 1 << 20;
/// Dependent multiplies of one chain.
const CHAIN_STEPS: u64 = 1 << 20;
/// Timed repetitions of each measure (the median is kept).
const REPS: usize = 15;

/// One reading of the probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostSpeed {
    /// A copy of [`COPY_BYTES`] bytes in the cache: GiB per second.
    pub memmove_gib_s: f64,
    /// A chain of dependent 64-bit multiplies (FNV-1a steps): nanoseconds
    /// per step.
    pub chain_ns: f64,
}

impl HostSpeed {
    /// `{"memmove_gib_s": x, "chain_ns": y}`.
    pub fn json(&self) -> Value {
        json!({"memmove_gib_s": self.memmove_gib_s, "chain_ns": self.chain_ns})
    }
}

/// Takes one reading (about 20 ms).
pub fn probe() -> HostSpeed {
    let src = vec![0x5au8; COPY_BYTES];
    let mut dst = vec![0u8; COPY_BYTES];
    dst.copy_from_slice(&src);
    let copies: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            black_box(&mut dst).copy_from_slice(black_box(&src));
            t.elapsed().as_secs_f64()
        })
        .collect();
    let chains: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            black_box(chain(black_box(CHAIN_STEPS)));
            t.elapsed().as_secs_f64()
        })
        .collect();
    HostSpeed {
        memmove_gib_s: COPY_BYTES as f64 / median(&copies) / (1u64 << 30) as f64,
        chain_ns: median(&chains) * 1e9 / CHAIN_STEPS as f64,
    }
}

/// `steps` FNV-1a steps, each waiting for the one before.
#[inline(never)]
fn chain(steps: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..steps {
        h = (h ^ i).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_measures_both() {
        let s = probe();
        assert!(
            s.memmove_gib_s.is_finite() && s.memmove_gib_s > 0.0,
            "{s:?}"
        );
        assert!(s.chain_ns.is_finite() && s.chain_ns > 0.0, "{s:?}");
        // A multiply takes at least a cycle: well over 0.05 ns on any
        // machine this runs on, so a chain the compiler had folded away
        // would show.
        assert!(s.chain_ns > 0.05, "{s:?}");
        let j = s.json();
        assert_eq!(j["chain_ns"], json!(s.chain_ns));
        assert_eq!(j["memmove_gib_s"], json!(s.memmove_gib_s));
    }
}
