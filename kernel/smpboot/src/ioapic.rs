//! I/O APIC registers and redirection-table entries.
//!
//! An I/O APIC has two MMIO registers: an index at offset 0
//! ([`REG_SELECT`]) and a window at offset 0x10 ([`REG_WINDOW`]). Register
//! 1 is the version (the highest input number in bits 16..24); input `n`'s
//! 64-bit redirection entry is registers `0x10 + 2n` (low half) and
//! `0x11 + 2n` (high half: the destination in bits 56..64).

/// Offset of the register-select (index) register.
pub const REG_SELECT: u64 = 0x00;
/// Offset of the data window.
pub const REG_WINDOW: u64 = 0x10;
/// Index of the version register.
pub const VERSION: u32 = 0x01;

/// Delivery mode NMI (the vector is ignored, the input always edge).
const DELIVERY_NMI: u64 = 0b100 << 8;
/// Destination mode logical.
const DEST_LOGICAL: u64 = 1 << 11;
/// Input polarity active low.
const ACTIVE_LOW: u64 = 1 << 13;
/// Trigger mode level.
const LEVEL: u64 = 1 << 15;
/// Interrupt masked.
pub const MASKED: u64 = 1 << 16;

/// Index of the low half of input `pin`'s redirection entry (the high half
/// is the next index).
pub const fn redirection(pin: u32) -> u32 {
    0x10 + 2 * pin
}

/// Number of inputs, from the version register's value.
pub const fn inputs(version: u32) -> u32 {
    ((version >> 16) & 0xff) + 1
}

/// The redirection entry that delivers an input as an NMI to the CPUs whose
/// logical APIC ids (flat model: one bit per CPU) are set in `cpus`, with
/// the input's polarity and trigger mode.
pub const fn nmi_to(cpus: u8, active_low: bool, level: bool) -> u64 {
    let mut e = DELIVERY_NMI | DEST_LOGICAL | (cpus as u64) << 56;
    if active_low {
        e |= ACTIVE_LOW;
    }
    if level {
        e |= LEVEL;
    }
    e
}

/// The flat-model logical APIC id (LDR value) of CPU `index`: bit `index`
/// of the top byte, for the first eight CPUs; `None` beyond.
pub const fn flat_ldr(index: usize) -> Option<u32> {
    if index < 8 {
        Some(1 << (24 + index))
    } else {
        None
    }
}

/// The destination-format register's value of the flat model.
pub const DFR_FLAT: u32 = 0xffff_ffff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nmi_entry_names_the_cpus_and_the_electrical_mode() {
        // PIT on GSI 2, edge, active high, to CPUs 0 and 1: delivery mode
        // 100b, logical destination, unmasked, destination 0b11.
        assert_eq!(nmi_to(0b11, false, false), 0x0300_0000_0000_0c00);
        let e = nmi_to(0x80, true, true);
        assert_eq!(e >> 56, 0x80);
        assert_eq!(e & ACTIVE_LOW, ACTIVE_LOW);
        assert_eq!(e & LEVEL, LEVEL);
        assert_eq!(e & MASKED, 0, "armed entries are unmasked");
        assert_eq!(e & 0xff, 0, "no vector: NMI ignores it");
    }

    #[test]
    fn registers_and_ids_are_numbered_as_the_datasheet_says() {
        assert_eq!(redirection(0), 0x10);
        assert_eq!(redirection(2), 0x14);
        // QEMU's and the 82093AA's version value: 24 inputs.
        assert_eq!(inputs(0x0017_0011), 24);
        assert_eq!(flat_ldr(0), Some(0x0100_0000));
        assert_eq!(flat_ldr(7), Some(0x8000_0000));
        assert_eq!(flat_ldr(8), None);
    }
}
