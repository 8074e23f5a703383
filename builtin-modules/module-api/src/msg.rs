//! A fixed-capacity text buffer: formatting without an allocator.

use core::fmt;

/// Up to `N` bytes of UTF-8 text. Writes past the capacity are cut at a
/// character boundary and the buffer remembers that it was truncated.
#[derive(Clone, Copy)]
pub struct MsgBuf<const N: usize> {
    buf: [u8; N],
    len: u16,
    truncated: bool,
}

impl<const N: usize> MsgBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        assert!(N <= u16::MAX as usize, "MsgBuf capacity must fit in u16");
        MsgBuf {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    /// A buffer holding `args` formatted (truncated to `N` bytes).
    pub fn format(args: fmt::Arguments<'_>) -> Self {
        let mut b = Self::new();
        // Writing never fails: overflow truncates.
        let _ = fmt::write(&mut b, args);
        b
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this cannot fail.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Whether some text did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> Default for MsgBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for MsgBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = usize::from(self.len);
        let room = N - len;
        let take = if s.len() <= room {
            s.len()
        } else {
            self.truncated = true;
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            cut
        };
        self.buf[len..len + take].copy_from_slice(&s.as_bytes()[..take]);
        // Fits: len + take <= N <= u16::MAX.
        self.len = (len + take) as u16;
        Ok(())
    }
}

impl<const N: usize> fmt::Display for MsgBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for MsgBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_truncates_at_char_boundary() {
        let b = MsgBuf::<16>::format(format_args!("no PCI device {:04x}", 0x8086));
        assert_eq!(b.as_str(), "no PCI device 80");
        assert!(b.truncated());
        let b = MsgBuf::<5>::format(format_args!("ab\u{e9}\u{e9}"));
        assert_eq!(b.as_str(), "ab\u{e9}");
        let b = MsgBuf::<8>::format(format_args!("ok {}", 1));
        assert_eq!(b.as_str(), "ok 1");
        assert!(!b.truncated());
    }
}
