//! xAPIC interrupt command register (ICR) values.
//!
//! An IPI is sent by writing the destination to ICR high (bits 56..63 of
//! the register, [`destination`]) and then the command to ICR low, which
//! sends it. The start-up sequence (Intel SDM vol. 3, "MP initialization")
//! is INIT (assert), 10 ms, STARTUP, 200 µs, STARTUP, 200 µs.

/// Delivery mode fixed: the vector is delivered as an interrupt.
pub const FIXED: u32 = 0b000 << 8;
/// Delivery mode NMI.
pub const NMI: u32 = 0b100 << 8;
/// Delivery mode INIT.
pub const INIT: u32 = 0b101 << 8;
/// Delivery mode STARTUP.
pub const STARTUP: u32 = 0b110 << 8;
/// Delivery status: the local APIC has not yet accepted the IPI.
pub const PENDING: u32 = 1 << 12;
/// Level: assert.
pub const ASSERT: u32 = 1 << 14;
/// Trigger mode: level.
pub const LEVEL: u32 = 1 << 15;

/// Delay after INIT before the first STARTUP.
pub const INIT_DELAY_US: u64 = 10_000;
/// Delay after each STARTUP.
pub const STARTUP_DELAY_US: u64 = 200;

/// ICR high for destination `apic_id` (physical destination mode).
pub const fn destination(apic_id: u32) -> u32 {
    (apic_id & 0xff) << 24
}

/// ICR low of INIT, level assert.
pub const fn init_assert() -> u32 {
    INIT | ASSERT | LEVEL
}

/// ICR low of INIT, level de-assert (the second half of the INIT the MP
/// specification sends; modern CPUs ignore it).
pub const fn init_deassert() -> u32 {
    INIT | LEVEL
}

/// ICR low of a STARTUP IPI that starts a CPU in real mode at
/// `trampoline`, which must be 4 KiB aligned and below 1 MiB (the vector is
/// its page number, the CPU starts at CS:IP = vector << 8 : 0).
pub const fn startup(trampoline: u64) -> Option<u32> {
    if !trampoline.is_multiple_of(4096) || trampoline >= 0x10_0000 {
        return None;
    }
    Some(STARTUP | (trampoline >> 12) as u32)
}

/// ICR low of a fixed IPI with `vector`.
pub const fn fixed(vector: u8) -> u32 {
    FIXED | vector as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_vector_is_the_page_number() {
        assert_eq!(startup(0x8000), Some(0x0000_0608));
        assert_eq!(startup(0x9f000), Some(0x0000_069f));
        assert_eq!(startup(0x8010), None, "unaligned");
        assert_eq!(startup(0x10_0000), None, "above 1 MiB");
    }

    #[test]
    fn init_and_fixed_encodings() {
        assert_eq!(init_assert(), 0xc500);
        assert_eq!(init_deassert(), 0x8500);
        assert_eq!(fixed(0xfd), 0xfd);
        assert_eq!(destination(3), 0x0300_0000);
        assert_eq!(destination(0x1ff), 0xff00_0000, "8-bit field");
    }
}
