//! Reclaim policies, chosen with `reclaim=` on the kernel command line.

/// What happens to the memory of expunged modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Nothing is freed; every region stays one 2 MiB mapping.
    Keep,
    /// Pages no kept module uses are freed in place; nothing moves.
    Holes,
    /// Kept modules are packed at 64 bytes; each region's tail is freed.
    Compact,
}

impl Policy {
    /// All policies.
    pub const ALL: [Policy; 3] = [Policy::Keep, Policy::Holes, Policy::Compact];

    /// Parses a command-line value.
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "keep" => Policy::Keep,
            "holes" => Policy::Holes,
            "compact" => Policy::Compact,
            _ => return None,
        })
    }

    /// The command-line and report name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Keep => "keep",
            Policy::Holes => "holes",
            Policy::Compact => "compact",
        }
    }

    /// Whether kept modules move to the packing cursor before their probe.
    pub fn moves_modules(self) -> bool {
        self == Policy::Compact
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
        assert_eq!(Policy::parse(""), None);
    }
}
