//! Wall-clock times of a command's phases, printed to stderr as each ends
//! when asked for (the command line asks when `PRELINKER_TIMES` is set):
//! for profiling.

/// Times phases one after another.
pub struct Phases {
    on: bool,
    /// Printed before each phase's name (indentation for nested phases).
    indent: &'static str,
    last: std::time::Instant,
}

impl Phases {
    /// Starts timing; prints nothing unless `on`.
    pub fn new(on: bool, indent: &'static str) -> Phases {
        Phases {
            on,
            indent,
            last: std::time::Instant::now(),
        }
    }

    /// Whether the times are printed.
    pub fn on(&self) -> bool {
        self.on
    }

    /// Prints the time since the last mark (or the start) as phase `what`.
    pub fn mark(&mut self, what: &str) {
        if self.on {
            let now = std::time::Instant::now();
            eprintln!(
                "prelinker: {}{what}: {:.3} ms",
                self.indent,
                (now - self.last).as_secs_f64() * 1e3
            );
            self.last = now;
        }
    }
}
