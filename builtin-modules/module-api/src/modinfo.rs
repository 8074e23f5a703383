//! Compile-time construction of the `.modinfo` section (used by [`module!`](crate::module)).

/// The `abi=` entry the `module!` macro writes (a section of its own in
/// `.modinfo`): `modabi::modinfo::ABI_ENTRY`.
pub use modabi::modinfo::ABI_ENTRY;

macro_rules! service_imports {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        /// One `import_sig=NAME:SIGNATURE` entry per kernel service, as this
        /// crate declares it: the prelinker compares each with the kernel's
        /// recorded signature hash.
        pub const SERVICE_IMPORTS: &str = ::core::concat!($(
            "import_sig=", ::core::stringify!($name), ":",
            modabi::signature_text!(($($ty),*) $(-> $ret)?), "\0",
        )*);
    };
}
modabi::kernel_services!(service_imports);

/// Copies the bytes of `s` into an array of exactly `N` bytes (`N` must be
/// `s.len()`); a `const fn`, so the section contents exist at compile time.
pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
    let src = s.as_bytes();
    assert!(src.len() == N, "modinfo length mismatch");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = src[i];
        i += 1;
    }
    out
}

/// Whether `name` is a valid module name: `[a-z][a-z0-9_]{0,31}` (the
/// rule the prelinker enforces at link time).
pub use modabi::modinfo::valid_name;

#[cfg(test)]
mod tests {
    use super::*;
    use modabi::modinfo::entries;

    #[test]
    fn macro_built_bytes_parse_back() {
        const S: &str =
            crate::__modinfo_text!(name: "e1000", depends: ["pci", "hpet"], exports: [probe_one]);
        static B: [u8; S.len()] = bytes(S);
        static A: [u8; ABI_ENTRY.len()] = bytes(ABI_ENTRY);
        let got: Vec<_> = entries(&B).map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                ("name", "e1000"),
                ("depends", "pci"),
                ("depends", "hpet"),
                ("export", "probe_one")
            ]
        );
        let abi: Vec<_> = entries(&A).map(Result::unwrap).collect();
        let version = modabi::modinfo::ABI_VERSION.to_string();
        assert_eq!(abi, [("abi", version.as_str())]);
    }

    #[test]
    fn names() {
        assert!(valid_name("uart_com1"));
        assert!(!valid_name(""));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("uart-com1"));
        assert!(!valid_name("Uart"));
        assert!(valid_name("abcdefghijklmnopqrstuvwxyz_01234"));
        assert!(!valid_name("abcdefghijklmnopqrstuvwxyz_012345"));
    }
}
