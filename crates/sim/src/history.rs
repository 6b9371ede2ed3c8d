//! A list-append history checker: finds isolation anomalies in what transactions did and
//! saw, without knowing how the database works inside.
//!
//! # The workload
//!
//! Every key holds a list of integers. A transaction runs a few operations, each either
//! *append v to key k* or *read key k*, and the test records the list each read saw, in
//! order. Every value is appended to its key at most once in the whole history, so a value
//! names the one append, and so the one transaction, that wrote it.
//!
//! # Why lists
//!
//! A read of a register says which write it saw, but not what came before it. A read of a
//! list says much more: `[3, 7, 2]` says that the appends of 3, 7 and 2 were installed in
//! that order, before anything appended later. So reads recover the *version order* of
//! every key, which is what the dependency graph of Adya's isolation theory needs and what
//! a black-box test normally cannot see.
//!
//! # The method
//!
//! ```text
//!   1. index appends    value ──► (writer, committed?, the writer's last append to it?)
//!   2. check each read  garbage (never appended), G1a (aborted writer), G1b (a writer's
//!                       intermediate state), duplicates, internal consistency
//!   3. version orders   per key, the longest committed read; every other committed read
//!                       of the key must be a prefix of it, else "incompatible order"
//!   4. edges            ww: writer of v[i]        ──► writer of v[i+1]
//!                       wr: writer of the last element a read saw ──► the reader
//!                       rw: the reader ──► writer of the first element it did not see
//!   5. cycles           strongly connected components (Tarjan), then in each the
//!                       weakest cycle: ww only (G0), ww+wr (G1c), one rw (G-single),
//!                       else two or more rw (G2)
//! ```
//!
//! Only committed transactions are nodes of the graph. An aborted transaction matters in
//! one way: nothing it appended may ever be read (G1a, "aborted read").
//!
//! A cycle means no serial order explains the history: every edge `a ──► b` says a must
//! come before b (b overwrote a's append, read it, or a read a state that b's append had
//! not yet reached). The classes follow Adya: G0 (write cycles) is what even READ
//! UNCOMMITTED forbids; G1c (cycles of writes and reads) READ COMMITTED forbids; G-single
//! (exactly one anti-dependency) snapshot isolation forbids; G2 (anti-dependency cycles,
//! such as write skew) only SERIALIZABLE forbids.
//!
//! # Lost updates
//!
//! A database that emulates append as read-modify-write (get the list, put it back with
//! one more element) can lose an append: two transactions read `[1]` and write `[1, 2]`
//! and `[1, 3]`. If each transaction also reads the key after appending, the two reads are
//! incompatible (neither is a prefix of the other), and the checker says so. Without such
//! reads the lost value is simply never observed, and the history looks fine.
//!
//! # What it leaves out
//!
//! - Real time: no strict serializability, no stale reads.
//! - It reports one cycle per strongly connected component (the weakest class found in
//!   it), not every cycle: enough to prove the anomaly, cheap on large histories.
//! - G1b is checked on the last element of each read only.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// One operation of a transaction, as recorded by the test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Append `value` to the list under `key`. Values are unique per key.
    Append {
        /// The key.
        key: u64,
        /// The value appended.
        value: u64,
    },
    /// Read the list under `key`: what it saw, in order (None: the key did not exist, which
    /// is the same as an empty list).
    Read {
        /// The key.
        key: u64,
        /// The list observed.
        list: Option<Vec<u64>>,
    },
}

/// One transaction of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its number, unique in the history.
    pub id: u64,
    /// What it did and saw, in order.
    pub ops: Vec<Op>,
    /// True if its commit was acknowledged. An aborted (or failed) transaction's appends
    /// must never be observed.
    pub committed: bool,
}

/// The kind of a dependency between two committed transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// Write-write: `to` appended right after `from` in the key's version order.
    Ww,
    /// Write-read: `to` read a list whose last element `from` appended.
    Wr,
    /// Read-write (anti-dependency): `from` read a list that `to`'s append had not reached.
    Rw,
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
        })
    }
}

/// A dependency `from ──► to`, with the key and value that justify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The transaction that must come first.
    pub from: u64,
    /// The transaction that must come after.
    pub to: u64,
    /// Why.
    pub kind: EdgeKind,
    /// The key.
    pub key: u64,
    /// ww: the value `to` appended; wr: the last value `to` read; rw: the value `to`
    /// appended that `from`'s read did not see.
    pub value: u64,
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{} -{}(key {}, value {})-> T{}", self.from, self.kind, self.key, self.value, self.to)
    }
}

/// The classes of anomaly the checker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    /// A value appended twice to the same key: the history breaks the checker's premise.
    DuplicateAppend,
    /// A read saw a value that no transaction appended.
    Garbage,
    /// A read saw the same value twice.
    DuplicateElements,
    /// A transaction's read disagrees with its own earlier reads and appends.
    Internal,
    /// Two committed reads of a key, neither a prefix of the other: no single version
    /// order explains them (a lost update, when append is read-modify-write).
    IncompatibleOrder,
    /// A cycle of write-write dependencies.
    G0,
    /// Aborted read: a committed transaction saw a value appended by an aborted one.
    G1a,
    /// Intermediate read: a transaction saw a state its writer later changed.
    G1b,
    /// A cycle of write-write and write-read dependencies.
    G1c,
    /// A cycle with exactly one anti-dependency (read-write edge).
    GSingle,
    /// A cycle with two or more anti-dependencies (write skew and its relatives).
    G2,
}

impl AnomalyKind {
    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::DuplicateAppend => "duplicate-append",
            AnomalyKind::Garbage => "garbage-read",
            AnomalyKind::DuplicateElements => "duplicate-elements",
            AnomalyKind::Internal => "internal",
            AnomalyKind::IncompatibleOrder => "incompatible-order",
            AnomalyKind::G0 => "G0",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::G2 => "G2",
        }
    }

    /// The class of a dependency cycle, from its edge kinds.
    pub fn of_cycle(cycle: &[Edge]) -> AnomalyKind {
        let rw = cycle.iter().filter(|e| e.kind == EdgeKind::Rw).count();
        match rw {
            0 if cycle.iter().all(|e| e.kind == EdgeKind::Ww) => AnomalyKind::G0,
            0 => AnomalyKind::G1c,
            1 => AnomalyKind::GSingle,
            _ => AnomalyKind::G2,
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly found in a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Its class.
    pub kind: AnomalyKind,
    /// The transactions involved.
    pub txns: Vec<u64>,
    /// For cycles (G0, G1c, G-single, G2): the cycle, edge by edge; empty otherwise.
    pub cycle: Vec<Edge>,
    /// What was seen, for a person to read.
    pub description: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.description)
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckResult {
    /// Every anomaly found; empty if the history is serializable (as far as the checker
    /// can see).
    pub anomalies: Vec<Anomaly>,
    /// Committed transactions checked.
    pub committed: usize,
    /// Dependency edges inferred.
    pub edges: usize,
}

impl CheckResult {
    /// True if no anomaly was found.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// How many anomalies of `kind` were found.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.anomalies.iter().filter(|a| a.kind == kind).count()
    }

    /// The number of anomalies of each kind found.
    pub fn counts(&self) -> BTreeMap<AnomalyKind, usize> {
        let mut out = BTreeMap::new();
        for a in &self.anomalies {
            *out.entry(a.kind).or_insert(0) += 1;
        }
        out
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} committed transactions, {} edges, ", self.committed, self.edges)?;
        if self.anomalies.is_empty() {
            return write!(f, "no anomalies");
        }
        let counts: Vec<String> = self.counts().iter().map(|(k, n)| format!("{n} {k}")).collect();
        write!(f, "anomalies: {}", counts.join(", "))?;
        for a in &self.anomalies {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

/// Checks a list-append history; see the module documentation for the method.
///
/// ```
/// use sim::history::{check, AnomalyKind, Op, Txn};
///
/// // Write skew: each reads both keys empty and appends to one of them.
/// let t = |id, append_to| Txn {
///     id,
///     ops: vec![
///         Op::Read { key: 1, list: None },
///         Op::Read { key: 2, list: None },
///         Op::Append { key: append_to, value: id },
///     ],
///     committed: true,
/// };
/// let after = Txn {
///     id: 3,
///     ops: vec![Op::Read { key: 1, list: Some(vec![1]) }, Op::Read { key: 2, list: Some(vec![2]) }],
///     committed: true,
/// };
/// let result = check(&[t(1, 1), t(2, 2), after]);
/// assert_eq!(result.count(AnomalyKind::G2), 1);
/// assert_eq!(
///     result.anomalies[0].to_string(),
///     "G2: a cycle of 2 transactions (2 in the component): \
///      T1 -rw(key 2, value 2)-> T2, T2 -rw(key 1, value 1)-> T1"
/// );
/// ```
///
/// Panics if two transactions share an id: that is a bug in the test, not in the database.
pub fn check(history: &[Txn]) -> CheckResult {
    let mut ids = BTreeSet::new();
    for t in history {
        assert!(ids.insert(t.id), "transaction id {} appears twice in the history", t.id);
    }
    let mut anomalies = Vec::new();
    let appends = index_appends(history, &mut anomalies);
    check_reads(history, &appends, &mut anomalies);
    check_internal(history, &mut anomalies);
    let orders = version_orders(history, &mut anomalies);
    let graph = Graph::build(history, &appends, &orders);
    let edges = graph.adj.values().map(Vec::len).sum();
    for scc in graph.sccs(|_| true) {
        if scc.len() > 1 {
            anomalies.push(graph.weakest_cycle(&scc));
        }
    }
    CheckResult { anomalies, committed: history.iter().filter(|t| t.committed).count(), edges }
}

/// Who appended a value.
#[derive(Debug, Clone, Copy)]
struct Appender {
    txn: u64,
    committed: bool,
    /// False if the same transaction appended to the key again afterwards.
    last_of_txn: bool,
}

fn index_appends(history: &[Txn], anomalies: &mut Vec<Anomaly>) -> BTreeMap<(u64, u64), Appender> {
    let mut appends: BTreeMap<(u64, u64), Appender> = BTreeMap::new();
    for t in history {
        let mut last_by_key: BTreeMap<u64, u64> = BTreeMap::new();
        for op in &t.ops {
            if let Op::Append { key, value } = *op {
                if let Some(first) = appends.get(&(key, value)) {
                    anomalies.push(Anomaly {
                        kind: AnomalyKind::DuplicateAppend,
                        txns: vec![first.txn, t.id],
                        cycle: Vec::new(),
                        description: format!("T{} and T{} both appended {value} to key {key}", first.txn, t.id),
                    });
                    continue;
                }
                appends.insert((key, value), Appender { txn: t.id, committed: t.committed, last_of_txn: true });
                if let Some(previous) = last_by_key.insert(key, value) {
                    appends.get_mut(&(key, previous)).expect("indexed above").last_of_txn = false;
                }
            }
        }
    }
    appends
}

fn reads(t: &Txn) -> impl Iterator<Item = (u64, &[u64])> {
    t.ops.iter().filter_map(|op| match op {
        Op::Read { key, list } => Some((*key, list.as_deref().unwrap_or(&[]))),
        Op::Append { .. } => None,
    })
}

fn check_reads(history: &[Txn], appends: &BTreeMap<(u64, u64), Appender>, anomalies: &mut Vec<Anomaly>) {
    for t in history.iter().filter(|t| t.committed) {
        for (key, list) in reads(t) {
            let mut seen = BTreeSet::new();
            for &value in list {
                let anomaly = |kind, txns, description| Anomaly { kind, txns, cycle: Vec::new(), description };
                if !seen.insert(value) {
                    anomalies.push(anomaly(
                        AnomalyKind::DuplicateElements,
                        vec![t.id],
                        format!("T{} read key {key} as {list:?}: {value} appears twice", t.id),
                    ));
                }
                match appends.get(&(key, value)) {
                    None => anomalies.push(anomaly(
                        AnomalyKind::Garbage,
                        vec![t.id],
                        format!("T{} read key {key} as {list:?}: nobody appended {value}", t.id),
                    )),
                    Some(w) if !w.committed => anomalies.push(anomaly(
                        AnomalyKind::G1a,
                        vec![w.txn, t.id],
                        format!(
                            "T{} read key {key} as {list:?}, which holds {value}, appended by T{} which aborted",
                            t.id, w.txn
                        ),
                    )),
                    Some(_) => {}
                }
            }
            let last = list.last().and_then(|v| appends.get(&(key, *v)).map(|w| (*v, w)));
            if let Some((value, w)) = last.filter(|(_, w)| w.committed && !w.last_of_txn && w.txn != t.id) {
                anomalies.push(Anomaly {
                    kind: AnomalyKind::G1b,
                    txns: vec![w.txn, t.id],
                    cycle: Vec::new(),
                    description: format!(
                        "T{} read key {key} as {list:?}, ending at {value}: T{} appended more to key {key} after {value}",
                        t.id, w.txn
                    ),
                });
            }
        }
    }
}

/// What a transaction knows about a key from its own operations.
enum Known {
    /// The whole list (it read the key).
    List(Vec<u64>),
    /// Only that the list ends with these (it appended without reading first).
    Tail(Vec<u64>),
}

fn check_internal(history: &[Txn], anomalies: &mut Vec<Anomaly>) {
    for t in history.iter().filter(|t| t.committed) {
        let mut known: BTreeMap<u64, Known> = BTreeMap::new();
        for op in &t.ops {
            match op {
                Op::Read { key, list } => {
                    let list = list.clone().unwrap_or_default();
                    let expected = match known.get(key) {
                        Some(Known::List(e)) if *e != list => Some(format!("{e:?}")),
                        Some(Known::Tail(e)) if !list.ends_with(e) => Some(format!("a list ending with {e:?}")),
                        _ => None,
                    };
                    if let Some(expected) = expected {
                        anomalies.push(Anomaly {
                            kind: AnomalyKind::Internal,
                            txns: vec![t.id],
                            cycle: Vec::new(),
                            description: format!(
                                "T{} read key {key} as {list:?}, but its own earlier operations imply {expected}",
                                t.id
                            ),
                        });
                    }
                    known.insert(*key, Known::List(list));
                }
                Op::Append { key, value } => match known.entry(*key).or_insert_with(|| Known::Tail(Vec::new())) {
                    Known::List(l) | Known::Tail(l) => l.push(*value),
                },
            }
        }
    }
}

/// The version order of each key: its longest committed read, or None if two committed
/// reads of it disagree.
fn version_orders(history: &[Txn], anomalies: &mut Vec<Anomaly>) -> BTreeMap<u64, Option<Vec<u64>>> {
    let mut by_key: BTreeMap<u64, Vec<(u64, &[u64])>> = BTreeMap::new();
    for t in history.iter().filter(|t| t.committed) {
        for (key, list) in reads(t) {
            by_key.entry(key).or_default().push((t.id, list));
        }
    }
    let mut orders = BTreeMap::new();
    for (key, reads) in by_key {
        let (by, order) = *reads.iter().max_by_key(|(_, l)| l.len()).expect("a key is listed for a read");
        match reads.iter().find(|(_, l)| !order.starts_with(l)) {
            Some((reader, list)) => {
                anomalies.push(Anomaly {
                    kind: AnomalyKind::IncompatibleOrder,
                    txns: vec![by, *reader],
                    cycle: Vec::new(),
                    description: format!(
                        "T{by} read key {key} as {order:?} and T{reader} as {list:?}: neither is a prefix of the other"
                    ),
                });
                orders.insert(key, None);
            }
            None => {
                orders.insert(key, Some(order.to_vec()));
            }
        }
    }
    orders
}

/// The dependency graph over committed transactions.
struct Graph {
    /// Out-edges of every committed transaction, at most one per (to, kind).
    adj: BTreeMap<u64, Vec<Edge>>,
}

impl Graph {
    fn build(
        history: &[Txn],
        appends: &BTreeMap<(u64, u64), Appender>,
        orders: &BTreeMap<u64, Option<Vec<u64>>>,
    ) -> Graph {
        let mut graph = Graph { adj: history.iter().filter(|t| t.committed).map(|t| (t.id, Vec::new())).collect() };
        let writer = |key: u64, value: u64| appends.get(&(key, value)).filter(|w| w.committed).map(|w| w.txn);
        for (&key, order) in orders {
            for pair in order.as_deref().unwrap_or(&[]).windows(2) {
                if let (Some(a), Some(b)) = (writer(key, pair[0]), writer(key, pair[1])) {
                    graph.add(Edge { from: a, to: b, kind: EdgeKind::Ww, key, value: pair[1] });
                }
            }
        }
        for t in history.iter().filter(|t| t.committed) {
            for (key, list) in reads(t) {
                if let Some(&last) = list.last() {
                    if let Some(w) = writer(key, last) {
                        graph.add(Edge { from: w, to: t.id, kind: EdgeKind::Wr, key, value: last });
                    }
                }
                let next = orders.get(&key).and_then(|o| o.as_ref()).and_then(|o| o.get(list.len()));
                if let Some(&next) = next {
                    if let Some(w) = writer(key, next) {
                        graph.add(Edge { from: t.id, to: w, kind: EdgeKind::Rw, key, value: next });
                    }
                }
            }
        }
        graph
    }

    fn add(&mut self, edge: Edge) {
        if edge.from == edge.to {
            return; // a transaction's order against itself says nothing
        }
        let out = self.adj.get_mut(&edge.from).expect("edges join committed transactions");
        if !out.iter().any(|e| e.to == edge.to && e.kind == edge.kind) {
            out.push(edge);
        }
    }

    /// Strongly connected components of the subgraph of edges that `allowed` keeps
    /// (Tarjan's algorithm, iterative so that long chains cannot overflow the stack).
    fn sccs(&self, allowed: impl Fn(&Edge) -> bool) -> Vec<Vec<u64>> {
        let mut index: BTreeMap<u64, (usize, usize)> = BTreeMap::new(); // node -> (index, lowlink)
        let mut on_stack = BTreeSet::new();
        let mut stack = Vec::new();
        let mut out = Vec::new();
        let mut next = 0;
        for &root in self.adj.keys() {
            if index.contains_key(&root) {
                continue;
            }
            let mut call: Vec<(u64, usize)> = vec![(root, 0)]; // (node, next out-edge to visit)
            index.insert(root, (next, next));
            next += 1;
            stack.push(root);
            on_stack.insert(root);
            while let Some(&mut (node, ref mut i)) = call.last_mut() {
                let edges = &self.adj[&node];
                if let Some(e) = edges.get(*i) {
                    *i += 1;
                    if !allowed(e) {
                        continue;
                    }
                    match index.get(&e.to) {
                        None => {
                            index.insert(e.to, (next, next));
                            next += 1;
                            stack.push(e.to);
                            on_stack.insert(e.to);
                            call.push((e.to, 0));
                        }
                        Some(&(to_index, _)) if on_stack.contains(&e.to) => {
                            let low = &mut index.get_mut(&node).expect("visited").1;
                            *low = (*low).min(to_index);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                call.pop();
                let (node_index, node_low) = index[&node];
                if let Some(&(parent, _)) = call.last() {
                    let low = &mut index.get_mut(&parent).expect("visited").1;
                    *low = (*low).min(node_low);
                }
                if node_low == node_index {
                    let mut scc = Vec::new();
                    loop {
                        let member = stack.pop().expect("the root is on the stack");
                        on_stack.remove(&member);
                        scc.push(member);
                        if member == node {
                            break;
                        }
                    }
                    scc.sort_unstable();
                    out.push(scc);
                }
            }
        }
        out
    }

    /// The shortest path `from ──► … ──► to` (at least one edge) through `members` along
    /// edges that `allowed` keeps.
    fn path(&self, members: &BTreeSet<u64>, from: u64, to: u64, allowed: &dyn Fn(&Edge) -> bool) -> Option<Vec<Edge>> {
        let mut came_by: BTreeMap<u64, &Edge> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(node) = queue.pop_front() {
            for e in self.adj[&node].iter().filter(|e| members.contains(&e.to) && allowed(e)) {
                if e.to == to {
                    let mut path = vec![e.clone()];
                    let mut at = node;
                    while at != from {
                        let back = came_by[&at];
                        path.push(back.clone());
                        at = back.from;
                    }
                    path.reverse();
                    return Some(path);
                }
                if e.to != from && !came_by.contains_key(&e.to) {
                    came_by.insert(e.to, e);
                    queue.push_back(e.to);
                }
            }
        }
        None
    }

    /// A cycle in the subgraph of `members` along edges `allowed` keeps, if there is one.
    fn cycle_among(&self, members: &BTreeSet<u64>, allowed: &dyn Fn(&Edge) -> bool) -> Option<Vec<Edge>> {
        let inside = |e: &Edge| members.contains(&e.from) && members.contains(&e.to) && allowed(e);
        let scc = self.sccs(inside).into_iter().find(|s| s.len() > 1)?;
        let scc: BTreeSet<u64> = scc.into_iter().collect();
        let start = *scc.first().expect("non-empty");
        self.path(&scc, start, start, allowed)
    }

    /// The weakest cycle in a strongly connected component, as an anomaly.
    fn weakest_cycle(&self, scc: &[u64]) -> Anomaly {
        let members: BTreeSet<u64> = scc.iter().copied().collect();
        let not_rw = |e: &Edge| e.kind != EdgeKind::Rw;
        let cycle = self
            .cycle_among(&members, &|e| e.kind == EdgeKind::Ww)
            .or_else(|| self.cycle_among(&members, &not_rw))
            .or_else(|| {
                // One anti-dependency a ──► b closed by a path b ──► a without any.
                scc.iter()
                    .flat_map(|a| &self.adj[a])
                    .filter(|e| e.kind == EdgeKind::Rw && members.contains(&e.to))
                    .find_map(|rw| {
                        let mut back = self.path(&members, rw.to, rw.from, &not_rw)?;
                        back.insert(0, rw.clone());
                        Some(back)
                    })
            })
            .or_else(|| self.path(&members, scc[0], scc[0], &|_| true))
            .expect("a strongly connected component of two or more transactions has a cycle");
        let kind = AnomalyKind::of_cycle(&cycle);
        let mut txns: Vec<u64> = cycle.iter().map(|e| e.from).collect();
        txns.sort_unstable();
        let steps: Vec<String> = cycle.iter().map(Edge::to_string).collect();
        let description =
            format!("a cycle of {} transactions ({} in the component): {}", cycle.len(), scc.len(), steps.join(", "));
        Anomaly { kind, txns, cycle, description }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(key: u64, value: u64) -> Op {
        Op::Append { key, value }
    }

    fn read(key: u64, list: &[u64]) -> Op {
        Op::Read { key, list: if list.is_empty() { None } else { Some(list.to_vec()) } }
    }

    fn txn(id: u64, ops: Vec<Op>) -> Txn {
        Txn { id, ops, committed: true }
    }

    fn kinds(r: &CheckResult) -> Vec<AnomalyKind> {
        r.anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn serial_history_is_valid() {
        let history = vec![
            txn(1, vec![read(1, &[]), append(1, 10), append(2, 20)]),
            txn(2, vec![read(1, &[10]), append(1, 11), read(1, &[10, 11])]),
            txn(3, vec![read(2, &[20]), read(1, &[10, 11]), append(2, 21)]),
            Txn { id: 4, ops: vec![append(1, 12)], committed: false },
            txn(5, vec![read(1, &[10, 11]), read(2, &[20, 21])]),
        ];
        let r = check(&history);
        assert!(r.is_valid(), "{r}");
        assert_eq!(r.committed, 4);
        assert!(r.edges > 0);
    }

    #[test]
    fn write_skew_is_g2() {
        // Each reads both keys empty, then appends to a different one.
        let history = vec![
            txn(1, vec![read(1, &[]), read(2, &[]), append(1, 10)]),
            txn(2, vec![read(1, &[]), read(2, &[]), append(2, 20)]),
            txn(3, vec![read(1, &[10]), read(2, &[20])]),
        ];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::G2], "{r}");
        let cycle = &r.anomalies[0].cycle;
        assert_eq!(cycle.len(), 2);
        assert!(cycle.iter().all(|e| e.kind == EdgeKind::Rw));
        assert_eq!(r.anomalies[0].txns, vec![1, 2]);
    }

    #[test]
    fn lost_update_is_an_incompatible_order() {
        // Read-modify-write append: both read [1] and both commit; each reads back its own.
        let history = vec![
            txn(1, vec![append(1, 1)]),
            txn(2, vec![read(1, &[1]), append(1, 2), read(1, &[1, 2])]),
            txn(3, vec![read(1, &[1]), append(1, 3), read(1, &[1, 3])]),
        ];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::IncompatibleOrder], "{r}");
    }

    #[test]
    fn lost_update_seen_as_g_single() {
        // T2 read [1] and appended 2, but T3, which read [1] before 2, is ordered before it:
        // T3 -rw-> T2 (T3 did not see 2) and T2 -ww-> T3 (3 follows 2).
        let history = vec![
            txn(1, vec![append(1, 1)]),
            txn(2, vec![read(1, &[1]), append(1, 2)]),
            txn(3, vec![read(1, &[1]), append(1, 3)]),
            txn(4, vec![read(1, &[1, 2, 3])]),
        ];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::GSingle], "{r}");
        assert_eq!(r.anomalies[0].txns, vec![2, 3]);
    }

    #[test]
    fn aborted_read_is_g1a() {
        let history = vec![Txn { id: 1, ops: vec![append(1, 10)], committed: false }, txn(2, vec![read(1, &[10])])];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::G1a], "{r}");
        assert_eq!(r.anomalies[0].txns, vec![1, 2]);
    }

    #[test]
    fn aborted_reads_do_not_count() {
        // An aborted transaction may have seen anything; only committed ones are judged.
        let history = vec![
            txn(1, vec![append(1, 10)]),
            Txn { id: 2, ops: vec![read(1, &[99]), read(1, &[10, 11])], committed: false },
        ];
        assert!(check(&history).is_valid());
    }

    #[test]
    fn intermediate_read_is_g1b() {
        let history = vec![txn(1, vec![append(1, 10), append(1, 11)]), txn(2, vec![read(1, &[10])])];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::G1b], "{r}");
    }

    #[test]
    fn write_cycle_is_g0() {
        // Key 1 says T1 then T2; key 2 says T2 then T1.
        let history = vec![
            txn(1, vec![append(1, 10), append(2, 21)]),
            txn(2, vec![append(1, 11), append(2, 20)]),
            txn(3, vec![read(1, &[10, 11]), read(2, &[20, 21])]),
        ];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::G0], "{r}");
    }

    #[test]
    fn circular_information_flow_is_g1c() {
        // T1 read T2's append and T2 read T1's.
        let history = vec![txn(1, vec![append(1, 10), read(2, &[20])]), txn(2, vec![append(2, 20), read(1, &[10])])];
        let r = check(&history);
        assert_eq!(kinds(&r), vec![AnomalyKind::G1c], "{r}");
        assert!(r.anomalies[0].cycle.iter().all(|e| e.kind == EdgeKind::Wr));
    }

    #[test]
    fn garbage_duplicates_and_internal_are_reported() {
        let history = vec![
            txn(1, vec![append(1, 10), append(1, 10)]),
            txn(2, vec![read(2, &[77])]),
            txn(3, vec![read(1, &[10, 10])]),
            txn(4, vec![read(3, &[]), append(3, 30), read(3, &[])]),
        ];
        let r = check(&history);
        let found: BTreeSet<AnomalyKind> = kinds(&r).into_iter().collect();
        for k in
            [AnomalyKind::DuplicateAppend, AnomalyKind::Garbage, AnomalyKind::DuplicateElements, AnomalyKind::Internal]
        {
            assert!(found.contains(&k), "{k} missing: {r}");
        }
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        // 20 000 transactions, each appending one value to the same key, read in full.
        let n = 20_000;
        let mut history: Vec<Txn> = (0..n).map(|i| txn(i, vec![append(1, i)])).collect();
        history.push(txn(n, vec![read(1, &(0..n).collect::<Vec<_>>())]));
        let r = check(&history);
        assert!(r.is_valid(), "{r}");
        assert_eq!(r.edges as u64, n); // n - 1 ww edges and one wr
    }
}
