//! Stratification: strongly connected components of the table dependency graph, in
//! an order where every component comes after those it depends on.

/// One edge `from -> to`: the rule with head `to` reads `from` (negatively or not).
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub negative: bool,
}

/// Components of nodes `0..n`, in dependency (topological) order. Iterative Tarjan,
/// so a 50,000-rule chain cannot overflow the stack.
pub fn components(n: usize, edges: &[Edge]) -> Vec<Vec<usize>> {
    // Adjacency in one array (compressed rows): one vector per node cost an allocation
    // per table, the largest transient of loading a 100,000-rule program.
    let mut start = vec![0usize; n + 1];
    for e in edges {
        start[e.from + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut targets = vec![0usize; edges.len()];
    for e in edges {
        targets[fill[e.from]] = e.to;
        fill[e.from] += 1;
    }
    drop(fill);
    let adj = |v: usize| &targets[start[v]..start[v + 1]];
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = call.last_mut() {
            if *i < adj(v).len() {
                let w = adj(v)[*i];
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    out.push(comp);
                }
            }
        }
    }
    // Tarjan emits components in reverse topological order of the edge direction
    // (sinks first); edges go from dependency to dependent, so reverse.
    out.reverse();
    out
}

/// A cycle through a negative edge inside one component, as a node path
/// (first == last), if there is one.
pub fn negative_cycle(comp: &[usize], edges: &[Edge]) -> Option<Vec<usize>> {
    let inside: std::collections::HashSet<usize> = comp.iter().copied().collect();
    let neg = edges.iter().find(|e| e.negative && inside.contains(&e.from) && inside.contains(&e.to))?;
    // BFS from neg.to back to neg.from within the component.
    let mut prev: std::collections::HashMap<usize, usize> = Default::default();
    let mut queue = std::collections::VecDeque::from([neg.to]);
    let mut seen: std::collections::HashSet<usize> = [neg.to].into();
    while let Some(v) = queue.pop_front() {
        if v == neg.from {
            break;
        }
        for e in edges.iter().filter(|e| e.from == v && inside.contains(&e.to)) {
            if seen.insert(e.to) {
                prev.insert(e.to, v);
                queue.push_back(e.to);
            }
        }
    }
    let mut path = vec![neg.from];
    let mut cur = neg.from;
    while cur != neg.to {
        cur = *prev.get(&cur)?;
        path.push(cur);
    }
    path.reverse();
    path.push(neg.to);
    // path: neg.to -> ... -> neg.from -> neg.to
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_in_dependency_order() {
        // 0 -> 1 -> 2 -> 1, 2 -> 3
        let e = |from, to| Edge { from, to, negative: false };
        let comps = components(4, &[e(0, 1), e(1, 2), e(2, 1), e(2, 3)]);
        let pos = |x: usize| comps.iter().position(|c| c.contains(&x)).unwrap();
        assert!(pos(0) < pos(1));
        assert_eq!(pos(1), pos(2));
        assert!(pos(2) < pos(3));
        assert_eq!(comps.len(), 3);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let n = 200_000;
        let edges: Vec<Edge> = (0..n - 1).map(|i| Edge { from: i, to: i + 1, negative: false }).collect();
        let comps = components(n, &edges);
        assert_eq!(comps.len(), n);
        assert_eq!(comps[0], vec![0]);
    }

    #[test]
    fn finds_negative_cycle() {
        let edges = [Edge { from: 0, to: 1, negative: false }, Edge { from: 1, to: 0, negative: true }];
        let cyc = negative_cycle(&[0, 1], &edges).unwrap();
        assert_eq!(cyc.first(), cyc.last());
        assert_eq!(cyc.len(), 3);
    }
}
