//! Module order: dependencies first; among modules that are ready, those
//! expected to be kept before those expected to fail, otherwise input order
//! (a stable topological sort); with errors for duplicates, missing
//! dependencies and cycles.

use crate::bail;
use crate::error::Result;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One module as the orderer sees it.
#[derive(Clone, Debug)]
pub struct Node<'a> {
    /// File name for messages.
    pub file: &'a str,
    /// Module name.
    pub name: &'a str,
    /// Names of the modules it depends on.
    pub depends: Vec<&'a str>,
    /// Expected to be expunged (`link --expect`): placed after every
    /// expected-kept module that does not depend on it.
    pub expected_failure: bool,
}

/// The result: `order[k]` is the input index of the `k`th module, and
/// `deps[i]` the input indices of input module `i`'s dependencies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// Input indices in slot order.
    pub order: Vec<usize>,
    /// Direct dependencies of each input module (input indices).
    pub deps: Vec<Vec<usize>>,
}

/// Orders modules so that every module comes after its dependencies; among
/// modules that are ready at the same time an expected-kept one goes before
/// an expected failure, and otherwise the earlier input goes first.
pub fn order(nodes: &[Node<'_>]) -> Result<Order> {
    let mut by_name: crate::Map<&str, usize> =
        crate::Map::with_capacity_and_hasher(nodes.len(), Default::default());
    for (i, n) in nodes.iter().enumerate() {
        if let Some(&j) = by_name.get(n.name) {
            bail!(
                DuplicateModule,
                "duplicate module name `{}`: defined by both {} and {}",
                n.name,
                nodes[j].file,
                n.file
            );
        }
        by_name.insert(n.name, i);
    }
    let mut deps = Vec::with_capacity(nodes.len());
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut pending = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut d = Vec::with_capacity(n.depends.len());
        for &dep in &n.depends {
            let Some(&j) = by_name.get(dep) else {
                bail!(
                    MissingDependency,
                    "{}: module `{}` depends on module `{dep}`, which is not among the inputs",
                    n.file,
                    n.name
                );
            };
            if j == i {
                bail!(
                    DependencyCycle,
                    "{}: module `{}` depends on itself",
                    n.file,
                    n.name
                );
            }
            if !d.contains(&j) {
                d.push(j);
                users[j].push(i);
                pending[i] += 1;
            }
        }
        deps.push(d);
    }
    let key = |i: usize| Reverse((nodes[i].expected_failure, i));
    let mut ready: BinaryHeap<Reverse<(bool, usize)>> = (0..nodes.len())
        .filter(|&i| pending[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready.push(key(u));
            }
        }
    }
    if order.len() != nodes.len() {
        let cycle = find_cycle(&deps, &pending);
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| format!("`{}` ({})", nodes[i].name, nodes[i].file))
            .collect();
        bail!(DependencyCycle, "dependency cycle: {}", names.join(" -> "));
    }
    Ok(Order { order, deps })
}

/// Finds one cycle among the modules that were never ready; the result
/// starts and ends with the same module.
fn find_cycle(deps: &[Vec<usize>], pending: &[usize]) -> Vec<usize> {
    // Every stuck module has a stuck dependency: walk them until one repeats.
    let start = (0..deps.len()).find(|&i| pending[i] > 0).unwrap();
    let mut seen = vec![usize::MAX; deps.len()];
    let mut path = Vec::new();
    let mut cur = start;
    while seen[cur] == usize::MAX {
        seen[cur] = path.len();
        path.push(cur);
        cur = *deps[cur].iter().find(|&&d| pending[d] > 0).unwrap();
    }
    let mut cycle = path[seen[cur]..].to_vec();
    cycle.push(cur);
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes<'a>(specs: &'a [(&'a str, Vec<String>)]) -> Vec<Node<'a>> {
        specs
            .iter()
            .map(|(n, d)| Node {
                file: n,
                name: n,
                depends: d.iter().map(String::as_str).collect(),
                expected_failure: false,
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn dependencies_first_otherwise_input_order() {
        let specs = [
            ("nic", s(&["pci"])),
            ("uart", s(&[])),
            ("pci", s(&[])),
            ("disk", s(&["pci", "nic"])),
            ("rtc", s(&[])),
        ];
        let o = order(&nodes(&specs)).unwrap();
        // Among ready modules the smallest input index wins at every step:
        // uart (1), pci (2) which frees nic (0), nic which frees disk (3), rtc (4).
        assert_eq!(o.order, vec![1, 2, 0, 3, 4]);
        assert_eq!(o.deps[3], vec![2, 0]);
    }

    #[test]
    fn expected_kept_modules_come_first_in_dependency_order() {
        let specs = [
            ("nodev", s(&["pci"])),
            ("nic", s(&["pci"])),
            ("uart2", s(&[])),
            ("pci", s(&[])),
            ("rtc", s(&[])),
            ("disk", s(&["nodev"])),
        ];
        let mut n = nodes(&specs);
        for i in [0, 2, 5] {
            n[i].expected_failure = true;
        }
        let o = order(&n).unwrap();
        // Kept: pci, nic, rtc (dependency order, then input order); then
        // the failures nodev, uart2, disk (disk after its dependency).
        assert_eq!(o.order, vec![3, 1, 4, 0, 2, 5]);
    }

    #[test]
    fn independent_modules_keep_input_order() {
        let specs = [("c", s(&[])), ("a", s(&[])), ("b", s(&[]))];
        assert_eq!(order(&nodes(&specs)).unwrap().order, vec![0, 1, 2]);
    }

    #[test]
    fn errors() {
        let specs = [("a", s(&["zz"]))];
        let e = order(&nodes(&specs)).unwrap_err();
        assert!(
            e.message().contains("`a`") && e.message().contains("`zz`"),
            "{e}"
        );
        let specs = [
            ("a", s(&["b"])),
            ("b", s(&["c"])),
            ("c", s(&["a"])),
            ("d", s(&[])),
        ];
        let e = order(&nodes(&specs)).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::DependencyCycle);
        assert!(
            e.message()
                .contains("`a` (a) -> `b` (b) -> `c` (c) -> `a` (a)"),
            "{e}"
        );
        let specs = [("a", s(&[])), ("a", s(&[]))];
        assert_eq!(
            order(&nodes(&specs)).unwrap_err().kind(),
            crate::error::ErrorKind::DuplicateModule
        );
    }
}
