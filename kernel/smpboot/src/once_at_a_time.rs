//! Running one handler on one CPU at a time without losing an interrupt:
//! the state of an interrupt line's handler, shared by every CPU.
//!
//! A CPU that finds the handler idle takes it ([`Gate::enter`] is true)
//! and runs it. A CPU that finds it running elsewhere marks it pending and
//! does not run it (`enter` is false). When the handler returns,
//! [`Gate::leave`] makes it idle again, unless it was marked pending
//! meanwhile: then the running CPU keeps it and runs it once more (`leave`
//! is false). Several interrupts during one run make one more run, as with
//! Linux's edge interrupt flow. Only the CPU that has the handler moves the
//! state back to idle or from pending to running; the others only take it
//! from idle or mark it pending, so no mark is lost.

use core::sync::atomic::{AtomicU8, Ordering};

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const PENDING: u8 = 2;

/// The state of one line's handler (see the module documentation).
pub struct Gate(AtomicU8);

impl Gate {
    /// An idle gate.
    pub const fn new() -> Self {
        Gate(AtomicU8::new(IDLE))
    }

    /// Takes the handler (true: run it now) or marks it pending for the CPU
    /// that has it (false: do not run it).
    pub fn enter(&self) -> bool {
        let mut was = self.0.load(Ordering::Acquire);
        loop {
            let next = if was == IDLE { RUNNING } else { PENDING };
            match self
                .0
                .compare_exchange_weak(was, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return was == IDLE,
                Err(now) => was = now,
            }
        }
    }

    /// After a run by the CPU that has the handler: true if it is idle
    /// now; false if it was marked pending meanwhile, in which case the
    /// caller still has it and runs it once more.
    pub fn leave(&self) -> bool {
        if self
            .0
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return true;
        }
        // Pending: only this CPU moves it from there. A swap, not a store:
        // it acquires the latest mark, so the next run sees what every CPU
        // that marked it wrote before marking.
        self.0.swap(RUNNING, Ordering::AcqRel);
        false
    }

    /// Makes it idle whatever was pending (the handler is gone: a fault
    /// removed it, or there was none to run).
    pub fn abandon(&self) {
        self.0.store(IDLE, Ordering::Release);
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use core::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn one_interrupt_during_a_run_makes_one_more_run() {
        let g = Gate::new();
        assert!(g.enter());
        assert!(!g.enter(), "running elsewhere: marked, not run");
        assert!(!g.enter(), "a second mark during the same run");
        assert!(!g.leave(), "pending: run once more");
        assert!(g.leave(), "nothing since: idle");
        assert!(g.enter(), "idle again: taken");
        g.abandon();
        assert!(g.enter());
        assert!(g.leave());
    }

    #[test]
    fn abandon_drops_what_was_pending() {
        let g = Gate::new();
        assert!(g.enter());
        assert!(!g.enter());
        g.abandon();
        assert!(g.enter(), "idle after abandon");
    }

    /// Threads firing the line in rounds: the handler never runs on two at
    /// once, and once a round's fires are done, a run has seen every one
    /// of them (a mark lost in any round, not only the last, fails).
    #[test]
    fn no_overlap_and_no_lost_interrupt_under_contention() {
        const THREADS: usize = 4;
        const ROUNDS: usize = 5_000;
        const FIRES: usize = 50;
        let g = Arc::new(Gate::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let fired = Arc::new(AtomicUsize::new(0));
        // The most fires a run saw at its start.
        let seen = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let overlap = Arc::new(core::sync::atomic::AtomicBool::new(false));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (g, inside, fired, seen, barrier, overlap) = (
                    g.clone(),
                    inside.clone(),
                    fired.clone(),
                    seen.clone(),
                    barrier.clone(),
                    overlap.clone(),
                );
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        for _ in 0..FIRES {
                            fired.fetch_add(1, Ordering::SeqCst);
                            if !g.enter() {
                                continue;
                            }
                            loop {
                                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                                    overlap.store(true, Ordering::SeqCst);
                                }
                                seen.fetch_max(fired.load(Ordering::SeqCst), Ordering::SeqCst);
                                inside.fetch_sub(1, Ordering::SeqCst);
                                if g.leave() {
                                    break;
                                }
                            }
                        }
                        barrier.wait();
                        // Every thread checks, so none waits at the next
                        // barrier for one that failed.
                        assert!(
                            !overlap.load(Ordering::SeqCst),
                            "round {round}: two runs at once"
                        );
                        let want = (round + 1) * FIRES * THREADS;
                        assert_eq!(
                            seen.load(Ordering::SeqCst),
                            want,
                            "round {round}: a fire was lost"
                        );
                        barrier.wait();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
