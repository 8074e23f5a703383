//! Reclaim policies, chosen with `reclaim=` on the kernel command line.

/// What happens to the memory of expunged modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Nothing is freed; every class range keeps its 2 MiB pages.
    Keep,
    /// 4 KiB pages no kernel or kept module byte uses are freed in place;
    /// nothing moves, huge pages split where a hole falls.
    Holes,
    /// Kept modules are packed at 64 bytes behind the kernel's own bytes;
    /// whole 2 MiB pages past the live end are freed, the tail of the last
    /// live huge page is kept as a trap-filled pool (text, rodata) or given
    /// to the heap (data). No huge page is split.
    Compact,
    /// As [`Policy::Compact`], but the last live huge page is split and its
    /// tail freed in 4 KiB pages: fewest bytes, more mappings.
    CompactSplit,
}

impl Policy {
    /// All policies.
    pub const ALL: [Policy; 4] = [
        Policy::Keep,
        Policy::Holes,
        Policy::Compact,
        Policy::CompactSplit,
    ];

    /// Parses a command-line value.
    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The command-line and report name.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::Keep => "keep",
            Policy::Holes => "holes",
            Policy::Compact => "compact",
            Policy::CompactSplit => "compact-split",
        }
    }

    /// Whether kept modules move to the packing cursor before their probe.
    pub fn moves_modules(self) -> bool {
        matches!(self, Policy::Compact | Policy::CompactSplit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.name()), Some(p));
        }
        assert_eq!(Policy::parse("Compact"), None);
        assert_eq!(Policy::parse("compact_split"), None);
        assert_eq!(Policy::parse(""), None);
    }
}
