//! [`super::Wide`]'s blocks on AVX2: lanes `4j` to `4j + 3` in YMM
//! register `j` (j = 0..4), one block of 256 bytes per loop pass.
//!
//! Per register and block, with `a` the 32 bytes at `32j` and `b` those at
//! `128 + 32j` (words `4j..4j + 4` and `4j + 16..4j + 20`): `x = h ^ a`
//! (`vpxor`), `x ^ lo32(x) * K` (`vpmuludq`, `vpxor`), the 32-bit halves
//! swapped (`vpshufd 0xb1`, that is `rotl32`), `+ b` (`vpaddq`). That is
//! [`super::blocks_scalar`] on four lanes at once, with the three-operand
//! forms sparing SSE2's copies and loads.

use super::{BLOCK, K, LANES};

/// One register's step: `$h` the lanes, `$t` a temporary, `$off` the
/// register's byte offset in the block's first half.
macro_rules! lane {
    ($h:literal, $t:literal, $off:literal) => {
        concat!(
            "vpxor ",
            $h,
            ", ",
            $h,
            ", [{p} + ",
            $off,
            "]\n",
            "vpmuludq ",
            $t,
            ", ",
            $h,
            ", ymm15\n",
            "vpxor ",
            $t,
            ", ",
            $t,
            ", ",
            $h,
            "\n",
            "vpshufd ",
            $h,
            ", ",
            $t,
            ", 0xb1\n",
            "vpaddq ",
            $h,
            ", ",
            $h,
            ", [{p} + 128 + ",
            $off,
            "]",
        )
    };
}

/// Feeds `bytes` (whole [`BLOCK`]s) to `lanes`, as
/// [`super::blocks_scalar`] does.
///
/// The caller must have checked that the CPU has AVX2 and that its YMM
/// state is enabled (`super::cpu`); that is why this is not public.
#[inline]
pub(super) fn blocks(lanes: &mut [u64; LANES], bytes: &[u8]) {
    assert_eq!(bytes.len() % BLOCK, 0, "whole blocks only");
    let n = bytes.len() / BLOCK;
    if n == 0 {
        return;
    }
    // SAFETY: as for the SSE2 loop (`super::sse2`): it reads exactly the
    // `n` whole blocks of `bytes` and the 128 bytes of `lanes`, writes
    // `lanes`, uses no stack, and the registers it uses are declared
    // clobbered (as XMM registers: the compiler keeps nothing in the upper
    // halves, since neither the kernel's nor the host's target enables
    // AVX, and `vzeroupper` clears them at the end). The caller checked
    // AVX2 and the OS-enabled YMM state, so the instructions exist.
    unsafe {
        core::arch::asm!(
            "movd xmm15, {k:e}",
            "vpbroadcastd ymm15, xmm15",
            "vmovdqu ymm0, [{l}]",
            "vmovdqu ymm1, [{l} + 32]",
            "vmovdqu ymm2, [{l} + 64]",
            "vmovdqu ymm3, [{l} + 96]",
            "2:",
            lane!("ymm0", "ymm8", "0"),
            lane!("ymm1", "ymm9", "32"),
            lane!("ymm2", "ymm10", "64"),
            lane!("ymm3", "ymm11", "96"),
            "add {p}, 256",
            "dec {n}",
            "jnz 2b",
            "vmovdqu [{l}], ymm0",
            "vmovdqu [{l} + 32], ymm1",
            "vmovdqu [{l} + 64], ymm2",
            "vmovdqu [{l} + 96], ymm3",
            "vzeroupper",
            k = in(reg) K,
            l = in(reg) lanes.as_mut_ptr(),
            p = inout(reg) bytes.as_ptr() => _,
            n = inout(reg) n => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm15") _,
            options(nostack),
        );
    }
}
