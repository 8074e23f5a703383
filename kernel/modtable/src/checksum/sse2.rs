//! [`super::Wide`]'s blocks on SSE2: lanes `2j` and `2j + 1` in XMM
//! register `j` (j = 0..8), one block of 256 bytes per loop pass.
//!
//! Per register and block, with `a` the 16 bytes at `16j` and `b` those at
//! `128 + 16j` (words `2j`, `2j + 1` and `2j + 16`, `2j + 17`):
//! `x = h ^ a` (`pxor`), `x ^ lo32(x) * K` (`pmuludq` on a copy, `pxor`),
//! the 32-bit halves swapped (`pshufd 0xb1`, that is `rotl32`), `+ b`.
//! That is [`super::blocks_scalar`] on two lanes at once.

use super::{BLOCK, K, LANES};

/// One register's step (see the module documentation): `$h` the lanes,
/// `$a` and `$t` temporaries, `$off` the register's byte offset in the
/// block's first half. Neighbouring registers use different temporaries.
macro_rules! lane {
    ($h:literal, $a:literal, $t:literal, $off:literal) => {
        concat!(
            "movdqu ",
            $a,
            ", [{p} + ",
            $off,
            "]\n",
            "pxor ",
            $h,
            ", ",
            $a,
            "\n",
            "movdqa ",
            $t,
            ", ",
            $h,
            "\n",
            "pmuludq ",
            $t,
            ", xmm15\n",
            "pxor ",
            $t,
            ", ",
            $h,
            "\n",
            "pshufd ",
            $h,
            ", ",
            $t,
            ", 0xb1\n",
            "movdqu ",
            $a,
            ", [{p} + 128 + ",
            $off,
            "]\n",
            "paddq ",
            $h,
            ", ",
            $a,
        )
    };
}

/// Feeds `bytes` (whole [`BLOCK`]s) to `lanes`, as
/// [`super::blocks_scalar`] does.
#[inline]
pub(super) fn blocks(lanes: &mut [u64; LANES], bytes: &[u8]) {
    assert_eq!(bytes.len() % BLOCK, 0, "whole blocks only");
    let n = bytes.len() / BLOCK;
    if n == 0 {
        return;
    }
    // SAFETY: the loop reads `n` blocks of 256 bytes from `bytes`, which
    // holds exactly that many (checked above), with unaligned loads, and
    // reads and writes the 128 bytes of `lanes` (sixteen u64s, also
    // unaligned), nothing else; it uses no stack. The XMM registers it
    // uses are declared clobbered. SSE2 is part of x86_64; in the kernel
    // the boot code sets CR4.OSFXSR before the first checksum, and the
    // kernel's soft-float target never holds values in XMM registers, so
    // neither an interrupt nor code on another CPU (whose registers are
    // its own) can see or change them halfway.
    unsafe {
        core::arch::asm!(
            "movd xmm15, {k:e}",
            "pshufd xmm15, xmm15, 0",
            "movdqu xmm0, [{l}]",
            "movdqu xmm1, [{l} + 16]",
            "movdqu xmm2, [{l} + 32]",
            "movdqu xmm3, [{l} + 48]",
            "movdqu xmm4, [{l} + 64]",
            "movdqu xmm5, [{l} + 80]",
            "movdqu xmm6, [{l} + 96]",
            "movdqu xmm7, [{l} + 112]",
            "2:",
            lane!("xmm0", "xmm8", "xmm9", "0"),
            lane!("xmm1", "xmm10", "xmm11", "16"),
            lane!("xmm2", "xmm12", "xmm13", "32"),
            lane!("xmm3", "xmm14", "xmm8", "48"),
            lane!("xmm4", "xmm9", "xmm10", "64"),
            lane!("xmm5", "xmm11", "xmm12", "80"),
            lane!("xmm6", "xmm13", "xmm14", "96"),
            lane!("xmm7", "xmm8", "xmm9", "112"),
            "add {p}, 256",
            "dec {n}",
            "jnz 2b",
            "movdqu [{l}], xmm0",
            "movdqu [{l} + 16], xmm1",
            "movdqu [{l} + 32], xmm2",
            "movdqu [{l} + 48], xmm3",
            "movdqu [{l} + 64], xmm4",
            "movdqu [{l} + 80], xmm5",
            "movdqu [{l} + 96], xmm6",
            "movdqu [{l} + 112], xmm7",
            k = in(reg) K,
            l = in(reg) lanes.as_mut_ptr(),
            p = inout(reg) bytes.as_ptr() => _,
            n = inout(reg) n => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack),
        );
    }
}
