//! Splitting per-module work over the machine's cores, keeping input order.

/// How many threads to use for `n` items: one below 64 items (thread start-up
/// would cost more than it saves), else up to the cores available (at most 8).
fn threads_for(n: usize) -> usize {
    if n < 64 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8)
}

/// `items.into_iter().enumerate().map(f)`, run on several threads for many
/// items; results come back in input order.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(usize, T) -> R + Sync) -> Vec<R> {
    map_with(items, || (), |_, i, t| f(i, t))
}

/// Items a worker takes at a time: small enough that a worker slowed down
/// (by another process, say) leaves its share to the others, large enough
/// that taking them costs nothing.
const BATCH: usize = 8;

/// Like [`map`], with a state per thread made by `init` (a buffer to reuse,
/// say) that `f` gets along with each item. Several items are worked on
/// by spawned threads only, the calling thread waiting for them: as one of
/// the workers, on the allocator's main arena, it made about one run in
/// four contend with the other worker for the allocator's lock (a thousand
/// futex waits in a link of a thousand modules). Workers take batches of
/// items as they become free.
pub fn map_with<T: Send, S, R: Send>(
    items: Vec<T>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, T) -> R + Sync,
) -> Vec<R> {
    map_batches_with(items, init, |state, start, batch| {
        batch
            .into_iter()
            .enumerate()
            .map(|(k, t)| f(state, start + k, t))
            .collect()
    })
}

/// Like [`map_with`], with `f` taking a whole batch of consecutive items
/// (the index of its first, and the items) and returning their results in
/// order: for work done once per batch, such as writing out what the batch
/// made. One thread works batch after batch in order too.
pub fn map_batches_with<T: Send, S, R: Send>(
    items: Vec<T>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, Vec<T>) -> Vec<R> + Sync,
) -> Vec<R> {
    let n = items.len();
    let threads = threads_for(n);
    if threads < 2 {
        let mut state = init();
        let mut out = Vec::with_capacity(n);
        let mut it = items.into_iter();
        let mut at = 0;
        loop {
            let b: Vec<T> = it.by_ref().take(BATCH).collect();
            if b.is_empty() {
                return out;
            }
            out.extend(f(&mut state, at, b));
            at += BATCH;
        }
    }
    let mut batches: Vec<(usize, Vec<T>)> = Vec::with_capacity(n.div_ceil(BATCH));
    let mut it = items.into_iter();
    let mut at = 0;
    loop {
        let b: Vec<T> = it.by_ref().take(BATCH).collect();
        if b.is_empty() {
            break;
        }
        batches.push((at, b));
        at += BATCH;
    }
    batches.reverse();
    let queue = std::sync::Mutex::new(batches);
    let work = || {
        let mut state = init();
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let next = queue.lock().expect("a worker panicked").pop();
            let Some((start, batch)) = next else {
                return done;
            };
            let out = f(&mut state, start, batch);
            done.push((start, out));
        }
    };
    let mut parts: Vec<(usize, Vec<R>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        let mut parts = Vec::new();
        for h in hs {
            parts.extend(h.join().expect("worker thread panicked"));
        }
        parts
    });
    parts.sort_unstable_by_key(|p| p.0);
    let mut out = Vec::with_capacity(n);
    for (_, p) in parts {
        out.extend(p);
    }
    out
}

/// Collects results in input order, returning the first error in that order.
pub fn collect<R, E>(results: Vec<Result<R, E>>) -> Result<Vec<R>, E> {
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_reports_the_first_error() {
        let v: Vec<u32> = (0..1000).collect();
        let out = super::map(v, |i, x| (i as u32) * 2 + x);
        assert_eq!(out, (0..1000).map(|x| 3 * x).collect::<Vec<_>>());
        let r: Vec<Result<u32, u32>> = super::map((0..200).collect(), |_, x| {
            if x % 50 == 49 { Err(x) } else { Ok(x) }
        });
        assert_eq!(super::collect(r), Err(49));
    }
}
