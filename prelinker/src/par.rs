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

/// Like [`map`], with a state per thread made by `init` (a buffer to reuse,
/// say) that `f` gets along with each item.
pub fn map_with<T: Send, S, R: Send>(
    items: Vec<T>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, T) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let threads = threads_for(n);
    if threads < 2 {
        let mut state = init();
        return items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(&mut state, i, t))
            .collect();
    }
    let chunk = n.div_ceil(threads);
    let mut chunks: Vec<Vec<(usize, T)>> = Vec::with_capacity(threads);
    let mut it = items.into_iter().enumerate();
    loop {
        let c: Vec<(usize, T)> = it.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    let (f, init) = (&f, &init);
    std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let mut state = init();
                    c.into_iter()
                        .map(|(i, t)| f(&mut state, i, t))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in hs {
            out.extend(h.join().expect("worker thread panicked"));
        }
        out
    })
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
