//! Which bus-0 slot each copy of the scale module drives, and so which
//! copies are expunged: the one statement of it, which the module's probe
//! follows and the scale boot test (`tests/tests/scale.rs`, which includes
//! this file) checks the report against.

/// One copy in this many drives an absent function and is expunged.
pub const FAIL_EVERY: u32 = 10;

/// The bus-0 slot copy `i` drives: 0..=3 (present on `pc`) for most, 16..=23
/// (empty on `pc`) for one in [`FAIL_EVERY`].
pub fn slot(i: u32) -> u32 {
    if i.is_multiple_of(FAIL_EVERY) {
        16 + (i / FAIL_EVERY) % 8
    } else {
        i % 4
    }
}
