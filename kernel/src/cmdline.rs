//! The kernel command line (from PVH `hvm_start_info.cmdline_paddr`).
//!
//! Words are separated by spaces. [`get`]`("key")` returns the value of the
//! first `key=value` word; [`has`]`("flag")` is true if the word `flag`
//! appears on its own. Options the foundation understands:
//!
//! | option | effect |
//! |---|---|
//! | `halt` | after boot, idle in a `hlt` loop with interrupts on instead of exiting |
//! | `fault=pagefault` | read the unmapped address [`FAULT_ADDRESS`] after boot |
//! | `fault=ud` | execute `ud2` after boot |
//! | `fault=panic` | panic after boot |
//! | `fault=stackoverflow` | recurse into the kernel stack's guard page after boot |
//! | `fault=wx_alias` | write to a kept module's text through the direct map after boot (must fault: W^X) |
//! | `loglevel=error\|warn\|info\|debug\|trace` | `log` level (default `info`) |
//!
//! Other options are read by the subsystems that own them.

use spin::Once;

/// Longest command line kept; the rest is dropped (with a warning).
pub const MAX_LEN: usize = 2048;

/// The unmapped higher-half address `fault=pagefault` touches.
pub const FAULT_ADDRESS: u64 = 0xffff_ffff_dead_0000;

struct Buf {
    bytes: [u8; MAX_LEN],
    len: usize,
}

static CMDLINE: Once<Buf> = Once::new();

/// Stores the command line. Non-ASCII and control bytes become `?`; a
/// trailing NUL ends it. Returns `true` if it had to be truncated. Only the
/// first call has an effect.
pub fn init(raw: &[u8]) -> bool {
    let raw = raw.split(|&b| b == 0).next().unwrap_or(&[]);
    let truncated = raw.len() > MAX_LEN;
    CMDLINE.call_once(|| {
        let mut buf = Buf {
            bytes: [0; MAX_LEN],
            len: 0,
        };
        for (dst, &src) in buf.bytes.iter_mut().zip(raw) {
            *dst = if (0x20..0x7f).contains(&src) {
                src
            } else {
                b'?'
            };
            buf.len += 1;
        }
        buf
    });
    truncated
}

/// The whole command line ("" before [`init`]).
pub fn raw() -> &'static str {
    match CMDLINE.get() {
        // Only printable ASCII is stored, so this never fails.
        Some(b) => core::str::from_utf8(&b.bytes[..b.len]).unwrap_or(""),
        None => "",
    }
}

/// Iterates over the words of the command line.
pub fn words() -> impl Iterator<Item = &'static str> {
    raw().split(' ').filter(|w| !w.is_empty())
}

/// The value of the first `key=value` word.
pub fn get(key: &str) -> Option<&'static str> {
    words().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// True if the word `flag` appears on its own.
pub fn has(flag: &str) -> bool {
    words().any(|w| w == flag)
}
