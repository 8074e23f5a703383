//! Permission classes of module bytes.

/// A permission class of module bytes; each class has its own region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Class {
    /// Executable code, mapped read + execute.
    Text = 0,
    /// Read-only data (`.rodata`, `.data.rel.ro`, the module's GOT), mapped read-only.
    Rodata = 1,
    /// Writable data and bss, mapped read + write, never executable.
    Data = 2,
}

impl Class {
    /// All classes, in region order.
    pub const ALL: [Class; 3] = [Class::Text, Class::Rodata, Class::Data];

    /// The class with this index (0 text, 1 rodata, 2 data).
    pub fn from_index(i: u32) -> Option<Class> {
        Self::ALL.get(i as usize).copied()
    }

    /// Index of the class (0 text, 1 rodata, 2 data).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name used in reports and JSON (`text`, `rodata`, `data`).
    pub const fn name(self) -> &'static str {
        match self {
            Class::Text => "text",
            Class::Rodata => "rodata",
            Class::Data => "data",
        }
    }
}

/// One value per class, indexable by [`Class`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerClass<T>(pub [T; 3]);

impl<T> core::ops::Index<Class> for PerClass<T> {
    type Output = T;
    fn index(&self, c: Class) -> &T {
        &self.0[c.index()]
    }
}

impl<T> core::ops::IndexMut<Class> for PerClass<T> {
    fn index_mut(&mut self, c: Class) -> &mut T {
        &mut self.0[c.index()]
    }
}

impl<T> PerClass<T> {
    /// The three values through `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerClass<U> {
        PerClass(self.0.map(f))
    }
}

impl<T: Copy + core::iter::Sum<T>> PerClass<T> {
    /// Sum over the three classes.
    pub fn total(&self) -> T {
        self.0.iter().copied().sum()
    }
}
