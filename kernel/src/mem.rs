//! The C memory functions the compiler and module objects call.
//!
//! `memcpy`, `memmove` and `memset` use `rep movsb` / `rep stosb` in inline
//! assembly, so the optimiser cannot turn their bodies back into calls to
//! themselves. They are exported to modules (see [`crate::exports`]).

use core::arch::asm;

/// Copies `n` bytes from `src` to `dest` (no overlap). Returns `dest`.
///
/// # Safety
/// `src` must be valid for `n` reads, `dest` for `n` writes, and the two
/// ranges must not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid; the direction
    // flag is clear (ABI), so `rep movsb` copies forwards.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// `src` must be valid for `n` reads and `dest` for `n` writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n == 0 {
        return dest;
    }
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is below src or past its end: forward copy is safe.
        // SAFETY: as for memcpy; forward order never reads a byte after
        // overwriting it in this case.
        unsafe { memcpy(dest, src, n) }
    } else {
        // dest overlaps the end of src: copy backwards.
        // SAFETY: the caller guarantees both ranges are valid; the direction
        // flag is set only around the copy and cleared again.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack)
            );
        }
        dest
    }
}

/// Fills `n` bytes at `dest` with the byte `c`. Returns `dest`.
///
/// # Safety
/// `dest` must be valid for `n` writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid; DF is clear.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags)
        );
    }
    dest
}

/// Compares `n` bytes; returns the difference of the first differing bytes
/// (as unsigned), or 0.
///
/// # Safety
/// Both pointers must be valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// Returns 0 if the `n` bytes are equal, non-zero otherwise.
///
/// # Safety
/// Both pointers must be valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

crate::export_symbol!(memcpy);
crate::export_symbol!(memmove);
crate::export_symbol!(memset);
crate::export_symbol!(memcmp);
crate::export_symbol!(bcmp);
