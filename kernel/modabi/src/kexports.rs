//! The kernel's export table, `.kexports`: one 64-byte record per symbol
//! modules may import, written by the kernel (`kernel::exports`) and read
//! by the prelinker, the one definition of the record both use.
//!
//! | bytes | field |
//! |---|---|
//! | 0..48 | name, NUL-padded (at most 47 bytes) |
//! | 48..56 | signature hash (`crate::signature_hash`; 0: unchecked) |
//! | 56..64 | absolute virtual address |
//!
//! Little-endian, as the target.

/// Name of the section holding the records.
pub const SECTION: &str = ".kexports";
/// Size of one record.
pub const RECORD_SIZE: usize = 64;
/// Size of the name field.
pub const NAME_LEN: usize = 48;
/// Offset of the signature hash.
pub const SIG_AT: usize = NAME_LEN;
/// Offset of the address.
pub const ADDR_AT: usize = SIG_AT + 8;

const _: () = assert!(ADDR_AT + 8 == RECORD_SIZE);
