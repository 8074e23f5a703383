//! Vector state for the one SIMD code of the kernel, the block loops of
//! `modtable::checksum`. The boot code (`boot.rs`) turns SSE on for every
//! CPU (CR4.OSFXSR; the other CPUs copy the boot CPU's CR4); [`enable_avx`]
//! adds the AVX state where the CPU has it, and runs on every CPU before it
//! checks a checksum, so that the loop the checksum code picks once runs
//! on all of them. Nothing else uses the vector registers (the kernel and
//! its modules are built soft-float), so they are never saved or restored.

use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

/// CPUID.1:ECX bit 26 (XSAVE) and bit 28 (AVX).
const XSAVE_AVX: u32 = (1 << 26) | (1 << 28);

/// Enables the AVX state on this CPU (CR4.OSXSAVE, then XCR0 = x87 | SSE |
/// AVX) if the CPU has XSAVE and AVX; returns whether it did.
pub fn enable_avx() -> bool {
    let leaf1 = core::arch::x86_64::__cpuid_count(1, 0);
    if leaf1.ecx & XSAVE_AVX != XSAVE_AVX {
        return false;
    }
    // SAFETY: CPUID says the CPU has XSAVE, so CR4.OSXSAVE is a valid bit
    // and XSETBV exists once it is set; XCR0 = x87 | SSE | AVX is a valid
    // value on a CPU with AVX. No code holds values in the vector
    // registers, so enabling more of their state changes nothing in use.
    unsafe {
        Cr4::write(Cr4::read() | Cr4Flags::OSXSAVE);
        XCr0::write(XCr0Flags::X87 | XCr0Flags::SSE | XCr0Flags::AVX);
    }
    true
}
