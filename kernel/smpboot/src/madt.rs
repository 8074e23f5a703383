//! The MADT (Multiple APIC Description Table, signature `APIC`): the local
//! APIC address and one entry per interrupt controller, among them one per
//! CPU (type 0, processor local APIC; type 9, processor local x2APIC), the
//! I/O APICs (type 1) and the ISA interrupts that arrive on another I/O APIC
//! input than their number (type 2, interrupt source override).

use crate::acpi::{HEADER_LEN, checksum_ok};
use crate::{le32, le64};

/// Table signature.
pub const SIGNATURE: &[u8; 4] = b"APIC";
/// `flags` bit 0 of a processor entry: the CPU is usable now.
pub const CPU_ENABLED: u32 = 1 << 0;
/// `flags` bit 1 of a processor entry: the CPU can be brought online later
/// (ACPI 6.3; meaningful only when not enabled).
pub const CPU_ONLINE_CAPABLE: u32 = 1 << 1;

/// Why a MADT was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// Shorter than its header and fixed fields, or than its length field.
    TooShort,
    /// Not an `APIC` table.
    Signature,
    /// The bytes do not sum to zero.
    Checksum,
    /// An entry's length is below 2 or runs past the table's end (its
    /// offset in the table).
    BadEntry(usize),
}

/// One MADT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// Type 0: a processor with a local APIC.
    LocalApic {
        /// ACPI processor UID.
        uid: u8,
        /// Local APIC id.
        apic_id: u8,
        /// [`CPU_ENABLED`], [`CPU_ONLINE_CAPABLE`].
        flags: u32,
    },
    /// Type 1: an I/O APIC.
    IoApic {
        /// I/O APIC id.
        id: u8,
        /// Physical MMIO address.
        address: u32,
        /// First global system interrupt it handles.
        gsi_base: u32,
    },
    /// Type 2: ISA interrupt `source` arrives on global system interrupt
    /// `gsi`, with the polarity and trigger mode in `flags`.
    SourceOverride {
        /// Bus (0: ISA).
        bus: u8,
        /// The ISA IRQ.
        source: u8,
        /// The global system interrupt it arrives on.
        gsi: u32,
        /// MPS INTI flags: polarity in bits 0..2, trigger mode in bits 2..4.
        flags: u16,
    },
    /// Type 5: a 64-bit local APIC address replacing the 32-bit one.
    LocalApicAddress(u64),
    /// Type 9: a processor with a local x2APIC.
    LocalX2Apic {
        /// x2APIC id.
        x2apic_id: u32,
        /// [`CPU_ENABLED`], [`CPU_ONLINE_CAPABLE`].
        flags: u32,
        /// ACPI processor UID.
        uid: u32,
    },
    /// Any other type (or a known type with a body too short for it).
    Other {
        /// Entry type.
        kind: u8,
        /// The entry's bytes after type and length.
        body: &'a [u8],
    },
}

/// A processor listed in the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// ACPI processor UID.
    pub uid: u32,
    /// Local APIC (or x2APIC) id.
    pub apic_id: u32,
    /// Listed as enabled (usable now).
    pub enabled: bool,
    /// Listed as not enabled but online-capable (hot-pluggable).
    pub online_capable: bool,
    /// From an x2APIC entry (type 9).
    pub x2apic: bool,
}

/// How an ISA IRQ reaches an I/O APIC: its input and electrical
/// behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaRoute {
    /// The global system interrupt.
    pub gsi: u32,
    /// Active low (ISA interrupts are active high unless overridden).
    pub active_low: bool,
    /// Level-triggered (ISA interrupts are edge-triggered unless
    /// overridden).
    pub level: bool,
}

/// The I/O APIC that serves a global system interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApicInput {
    /// I/O APIC id.
    pub id: u8,
    /// Physical MMIO address.
    pub address: u32,
    /// The input (redirection-table index) on that I/O APIC.
    pub pin: u32,
}

/// A validated MADT.
#[derive(Clone, Copy, Debug)]
pub struct Madt<'a> {
    /// The 32-bit local APIC address of the fixed part.
    pub lapic_addr32: u32,
    /// MADT flags (bit 0: dual 8259 PICs present).
    pub flags: u32,
    entries: &'a [u8],
}

impl<'a> Madt<'a> {
    /// Checks signature, length, checksum and the chain of entry lengths.
    pub fn parse(table: &'a [u8]) -> Result<Madt<'a>, MadtError> {
        if table.len() < HEADER_LEN + 8 {
            return Err(MadtError::TooShort);
        }
        if &table[..4] != SIGNATURE {
            return Err(MadtError::Signature);
        }
        let len = le32(table, 4) as usize;
        if len < HEADER_LEN + 8 || len > table.len() {
            return Err(MadtError::TooShort);
        }
        let table = &table[..len];
        if !checksum_ok(table) {
            return Err(MadtError::Checksum);
        }
        let entries = &table[HEADER_LEN + 8..];
        let mut off = 0;
        while off < entries.len() {
            let elen = entries.get(off + 1).map_or(0, |&l| l as usize);
            if elen < 2 || off + elen > entries.len() {
                return Err(MadtError::BadEntry(HEADER_LEN + 8 + off));
            }
            off += elen;
        }
        Ok(Madt {
            lapic_addr32: le32(table, HEADER_LEN),
            flags: le32(table, HEADER_LEN + 4),
            entries,
        })
    }

    /// The entries in table order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + 'a {
        let mut rest = self.entries;
        core::iter::from_fn(move || {
            let (&kind, tail) = rest.split_first()?;
            let len = *tail.first()? as usize;
            let body = rest.get(2..len)?;
            rest = &rest[len..];
            Some(decode(kind, body))
        })
    }

    /// The local APIC's physical address: the type 5 override if present,
    /// else the fixed field.
    pub fn lapic_addr(&self) -> u64 {
        self.entries()
            .find_map(|e| match e {
                Entry::LocalApicAddress(a) => Some(a),
                _ => None,
            })
            .unwrap_or(u64::from(self.lapic_addr32))
    }

    /// Where ISA IRQ `irq` arrives: the override for it if there is one
    /// (polarity and trigger "bus default" meaning ISA's active high and
    /// edge), else the same-numbered GSI.
    pub fn isa_route(&self, irq: u8) -> IsaRoute {
        let found = self.entries().find_map(|e| match e {
            Entry::SourceOverride {
                bus: 0,
                source,
                gsi,
                flags,
            } if source == irq => Some((gsi, flags)),
            _ => None,
        });
        let (gsi, flags) = found.unwrap_or((u32::from(irq), 0));
        IsaRoute {
            gsi,
            // Polarity 0b11 is active low, trigger 0b11 level (ACPI 6.5,
            // table 5.50); 0b00 is the bus's default, 0b01 the opposite.
            active_low: flags & 0b11 == 0b11,
            level: (flags >> 2) & 0b11 == 0b11,
        }
    }

    /// The I/O APIC whose inputs include `gsi`, given how many inputs each
    /// one has (`inputs(address)`, read from its version register), and the
    /// input it arrives on.
    pub fn ioapic_for(&self, gsi: u32, inputs: impl Fn(u32) -> u32) -> Option<IoApicInput> {
        self.entries().find_map(|e| match e {
            Entry::IoApic {
                id,
                address,
                gsi_base,
            } if gsi >= gsi_base && gsi - gsi_base < inputs(address) => Some(IoApicInput {
                id,
                address,
                pin: gsi - gsi_base,
            }),
            _ => None,
        })
    }

    /// Every processor entry (type 0 and 9), in table order.
    pub fn cpus(&self) -> impl Iterator<Item = Cpu> + 'a {
        self.entries().filter_map(|e| match e {
            Entry::LocalApic {
                uid,
                apic_id,
                flags,
            } => Some(cpu(u32::from(uid), u32::from(apic_id), flags, false)),
            Entry::LocalX2Apic {
                x2apic_id,
                flags,
                uid,
            } => Some(cpu(uid, x2apic_id, flags, true)),
            _ => None,
        })
    }
}

fn cpu(uid: u32, apic_id: u32, flags: u32, x2apic: bool) -> Cpu {
    let enabled = flags & CPU_ENABLED != 0;
    Cpu {
        uid,
        apic_id,
        enabled,
        online_capable: !enabled && flags & CPU_ONLINE_CAPABLE != 0,
        x2apic,
    }
}

fn decode(kind: u8, body: &[u8]) -> Entry<'_> {
    match (kind, body.len()) {
        (0, 6..) => Entry::LocalApic {
            uid: body[0],
            apic_id: body[1],
            flags: le32(body, 2),
        },
        (1, 10..) => Entry::IoApic {
            id: body[0],
            address: le32(body, 2),
            gsi_base: le32(body, 6),
        },
        (2, 8..) => Entry::SourceOverride {
            bus: body[0],
            source: body[1],
            gsi: le32(body, 2),
            flags: u16::from_le_bytes([body[6], body[7]]),
        },
        (5, 10..) => Entry::LocalApicAddress(le64(body, 2)),
        (9, 14..) => Entry::LocalX2Apic {
            x2apic_id: le32(body, 2),
            flags: le32(body, 6),
            uid: le32(body, 10),
        },
        _ => Entry::Other { kind, body },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::acpi::tests::{fix_checksum, table};
    use alloc::vec;
    use alloc::vec::Vec;

    /// A MADT with local APIC address `lapic` and the given raw entries.
    pub(crate) fn madt(lapic: u32, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&lapic.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            body.extend_from_slice(e);
        }
        table(SIGNATURE, &body)
    }

    pub(crate) fn lapic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
        let mut e = vec![0, 8, uid, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    fn x2apic(id: u32, flags: u32, uid: u32) -> Vec<u8> {
        let mut e = vec![9, 16, 0, 0];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&uid.to_le_bytes());
        e
    }

    fn ioapic() -> Vec<u8> {
        let mut e = vec![1, 12, 0, 0];
        e.extend_from_slice(&0xfec0_0000u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e
    }

    #[test]
    fn cpus_and_flags_are_read() {
        let t = madt(
            0xfee0_0000,
            &[
                lapic(0, 0, CPU_ENABLED),
                ioapic(),
                lapic(1, 2, CPU_ENABLED),
                vec![2, 10, 0, 0, 2, 0, 0, 0, 0, 0], // interrupt source override
                lapic(2, 4, 0),
                lapic(3, 6, CPU_ONLINE_CAPABLE),
                x2apic(300, CPU_ENABLED, 4),
            ],
        );
        let m = Madt::parse(&t).expect("valid");
        assert_eq!(m.lapic_addr(), 0xfee0_0000);
        assert_eq!(m.flags, 1);
        let cpus: Vec<Cpu> = m.cpus().collect();
        assert_eq!(cpus.len(), 5);
        assert_eq!(
            cpus.iter().map(|c| c.apic_id).collect::<Vec<_>>(),
            [0, 2, 4, 6, 300]
        );
        assert_eq!(
            cpus.iter().map(|c| c.enabled).collect::<Vec<_>>(),
            [true, true, false, false, true]
        );
        assert!(cpus[3].online_capable && !cpus[2].online_capable);
        assert!(cpus[4].x2apic && cpus[4].uid == 4);
        assert!(m.entries().any(|e| matches!(
            e,
            Entry::IoApic {
                address: 0xfec0_0000,
                ..
            }
        )));
        assert!(m.entries().any(|e| e
            == Entry::SourceOverride {
                bus: 0,
                source: 0,
                gsi: 2,
                flags: 0
            }));
    }

    fn source_override(source: u8, gsi: u32, flags: u16) -> Vec<u8> {
        let mut e = vec![2, 10, 0, source];
        e.extend_from_slice(&gsi.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    #[test]
    fn isa_irqs_follow_their_overrides() {
        let t = madt(
            0xfee0_0000,
            &[
                ioapic(),
                source_override(0, 2, 0),
                // SCI: level, active low.
                source_override(9, 9, 0b1111),
                // Explicitly active high, edge (0b01 each).
                source_override(5, 20, 0b0101),
            ],
        );
        let m = Madt::parse(&t).unwrap();
        let edge_high = |gsi| IsaRoute {
            gsi,
            active_low: false,
            level: false,
        };
        assert_eq!(m.isa_route(0), edge_high(2));
        assert_eq!(m.isa_route(1), edge_high(1), "no override: identity");
        assert_eq!(m.isa_route(5), edge_high(20));
        assert_eq!(
            m.isa_route(9),
            IsaRoute {
                gsi: 9,
                active_low: true,
                level: true
            }
        );
    }

    #[test]
    fn a_gsi_is_found_on_the_ioapic_that_has_the_input() {
        let mut second = vec![1, 12, 1, 0];
        second.extend_from_slice(&0xfec0_1000u32.to_le_bytes());
        second.extend_from_slice(&24u32.to_le_bytes());
        let t = madt(0xfee0_0000, &[ioapic(), second]);
        let m = Madt::parse(&t).unwrap();
        let inputs = |_| 24;
        assert_eq!(
            m.ioapic_for(2, inputs),
            Some(IoApicInput {
                id: 0,
                address: 0xfec0_0000,
                pin: 2
            })
        );
        assert_eq!(
            m.ioapic_for(30, inputs),
            Some(IoApicInput {
                id: 1,
                address: 0xfec0_1000,
                pin: 6
            })
        );
        assert_eq!(m.ioapic_for(48, inputs), None, "past the last input");
        // An I/O APIC with fewer inputs than the GSI needs does not serve it.
        assert_eq!(m.ioapic_for(20, |_| 16), None);
    }

    #[test]
    fn address_override_wins() {
        let mut ovr = vec![5, 12, 0, 0];
        ovr.extend_from_slice(&0x1_0000_0000u64.to_le_bytes());
        let t = madt(0xfee0_0000, &[lapic(0, 0, CPU_ENABLED), ovr]);
        let m = Madt::parse(&t).unwrap();
        assert_eq!(m.lapic_addr32, 0xfee0_0000);
        assert_eq!(m.lapic_addr(), 0x1_0000_0000);
    }

    #[test]
    fn damaged_tables_are_refused() {
        let good = madt(0xfee0_0000, &[lapic(0, 0, CPU_ENABLED)]);
        assert!(Madt::parse(&good).is_ok());
        assert_eq!(Madt::parse(&good[..20]).unwrap_err(), MadtError::TooShort);
        let mut t = good.clone();
        t[0] = b'X';
        assert_eq!(Madt::parse(&t).unwrap_err(), MadtError::Signature);
        let mut t = good.clone();
        t[44 + 3] ^= 1;
        assert_eq!(Madt::parse(&t).unwrap_err(), MadtError::Checksum);
        // Length field longer than the bytes given.
        let mut t = good.clone();
        t[4] += 1;
        fix_checksum(&mut t, 9);
        assert_eq!(Madt::parse(&t).unwrap_err(), MadtError::TooShort);
        // An entry claiming more bytes than the table has.
        let mut e = lapic(1, 1, CPU_ENABLED);
        e[1] = 40;
        let t = madt(0xfee0_0000, &[lapic(0, 0, CPU_ENABLED), e]);
        assert_eq!(Madt::parse(&t).unwrap_err(), MadtError::BadEntry(52));
        // A zero-length entry would loop forever.
        let t = madt(0xfee0_0000, &[vec![0, 0]]);
        assert_eq!(Madt::parse(&t).unwrap_err(), MadtError::BadEntry(44));
    }

    #[test]
    fn short_known_entries_are_other() {
        let t = madt(0xfee0_0000, &[vec![0, 4, 1, 1]]);
        let m = Madt::parse(&t).unwrap();
        assert_eq!(m.cpus().count(), 0);
        assert_eq!(
            m.entries().next(),
            Some(Entry::Other {
                kind: 0,
                body: &[1, 1]
            })
        );
    }
}
