//! The legacy NMI status register (port 0x61, "NMI status and control",
//! read side): bit 7 latches a system error (PCI SERR#, memory parity),
//! bit 6 an I/O channel check (IOCHK#). Either means the NMI came from
//! failing hardware, never from the watchdog's timer; with both clear the
//! NMI has no reason the chipset reports (Linux's `default_do_nmi` reads
//! the same bits).

/// The status register's port.
pub const STATUS_PORT: u16 = 0x61;
/// Bit 7: system error (SERR#, parity).
pub const SERR: u8 = 1 << 7;
/// Bit 6: I/O channel check (IOCHK#).
pub const IOCHK: u8 = 1 << 6;

/// The hardware error a status byte reports, if any.
pub const fn hardware_reason(status: u8) -> Option<&'static str> {
    match (status & SERR != 0, status & IOCHK != 0) {
        (true, true) => Some("system error (SERR#) and I/O channel check (IOCHK#)"),
        (true, false) => Some("system error (SERR#, memory parity or PCI)"),
        (false, true) => Some("I/O channel check (IOCHK#)"),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bits_6_and_7_are_hardware_errors() {
        for status in 0..=u8::MAX {
            let error = status & (SERR | IOCHK) != 0;
            assert_eq!(hardware_reason(status).is_some(), error, "{status:#x}");
        }
        // The bits the PIT and the refresh toggle drive, as a boot reads
        // them, are no error.
        assert_eq!(hardware_reason(0x30), None);
        assert!(hardware_reason(0xb0).unwrap().contains("SERR#"));
        assert!(hardware_reason(0x40).unwrap().contains("IOCHK#"));
    }
}
