//! Which block loop this CPU runs: AVX2 where the CPU has it and the OS
//! (the kernel's boot code, or the host's) has enabled the YMM state in
//! XCR0, else SSE2, part of every x86_64 CPU.

use core::sync::atomic::{AtomicU8, Ordering};

/// The block loops [`super::Wide`] can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// 128-bit registers, two lanes each.
    Sse2,
    /// 256-bit registers, four lanes each.
    Avx2,
}

impl Simd {
    /// The name the tools print: `sse2` or `avx2`.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Sse2 => "sse2",
            Simd::Avx2 => "avx2",
        }
    }
}

/// 0: not asked yet; else 1 + the [`Simd`] discriminant.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// The loop in use, asked of the CPU once. The kernel enables the same
/// XCR0 on every CPU before it checks a checksum, so one answer holds for
/// all of them.
pub fn simd() -> Simd {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Simd::Sse2,
        2 => Simd::Avx2,
        _ => {
            let s = detect();
            CHOSEN.store(1 + s as u8, Ordering::Relaxed);
            s
        }
    }
}

/// CPUID.1:ECX bit 27 (OSXSAVE) and 28 (AVX), CPUID.7.0:EBX bit 5 (AVX2),
/// and XCR0 bits 1 and 2 (SSE and AVX state enabled by the OS).
fn detect() -> Simd {
    use core::arch::x86_64::__cpuid_count;
    let leaf1 = __cpuid_count(1, 0);
    let osxsave_avx = (1 << 27) | (1 << 28);
    if leaf1.ecx & osxsave_avx != osxsave_avx || __cpuid_count(0, 0).eax < 7 {
        return Simd::Sse2;
    }
    if __cpuid_count(7, 0).ebx & (1 << 5) == 0 {
        return Simd::Sse2;
    }
    let xcr0_low: u32;
    // SAFETY: XGETBV exists when CPUID says OSXSAVE (checked above); with
    // ECX = 0 it reads XCR0 into EDX:EAX and touches nothing else.
    unsafe {
        core::arch::asm!(
            "xgetbv",
            in("ecx") 0u32,
            out("eax") xcr0_low,
            out("edx") _,
            options(nomem, nostack, preserves_flags),
        );
    }
    if xcr0_low & 0b110 == 0b110 {
        Simd::Avx2
    } else {
        Simd::Sse2
    }
}
