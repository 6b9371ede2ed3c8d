//! EXPLAIN: a plan as PostgreSQL-style text, one line per node.
//!
//! ```text
//!   Hash Join  (rows=12)                       node, estimated rows (COSTS)
//!     Hash Cond: (l.k = r.k)                   node details
//!     ->  Seq Scan on l  (rows=5)              children, indented under "->"
//!     ->  Hash  (rows=5)
//!           ->  Seq Scan on r  (rows=5)
//! ```
//!
//! With ANALYZE the statement runs first with a [`Profile`] attached to the executor, and
//! each node also shows `(actual time=first..total rows=N loops=N)`: what it yielded, how
//! often it ran, and its time in milliseconds (its inputs' time included). Operators
//! materialise their output, so the first row and the last come at the same time.
//!
//! Nodes that only compute columns or filter rows (projection, WHERE over a join, HAVING,
//! dropping hidden sort columns) are not shown, as in PostgreSQL; the node under them
//! reports their output rows, and a filter shows as a `Filter` (over an inner join, `Join
//! Filter`) line of that node. Conditions are shown as written, with a scan's own columns
//! unqualified and the equalities a hash join already checks left out of filters.
//!
//! Writes ([`write_lines`]) show as `Insert on t` (or Update, Delete) over the plan that
//! makes or finds their rows.
//!
//! # Left out
//!
//! Costs (only row estimates are shown), widths, buffers, other formats than
//! text, and the rows removed by a join's own ON conditions.

use crate::ast::JoinKind;
use crate::plan::{estimate_rows, Lookup, Plan};
use std::collections::HashMap;
use std::time::Duration;

/// What one node did while the statement ran.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeStats {
    /// Rows it yielded, over all runs.
    pub rows: u64,
    /// Times it ran (more than once inside a correlated subquery).
    pub loops: u64,
    /// Time spent in it, inputs included, over all runs.
    pub time: Duration,
    /// Rows a scan's filter removed, over all runs.
    pub removed: u64,
}

/// Per-node statistics of one run, keyed by the node's address in the plan (the plan is
/// neither moved nor changed while it runs and is explained).
pub type Profile = HashMap<usize, NodeStats>;

/// The key of `plan` in a [`Profile`].
pub fn node_id(plan: &Plan) -> usize {
    plan as *const Plan as usize
}

/// What to show.
pub struct Options<'p> {
    /// The planner's row estimates.
    pub costs: bool,
    /// What each node did (EXPLAIN ANALYZE).
    pub profile: Option<&'p Profile>,
    /// Times, with `profile`.
    pub timing: bool,
}

/// The lines of EXPLAIN's output for `plan`.
pub fn lines(plan: &Plan, opts: &Options<'_>) -> Vec<String> {
    let mut out = Vec::new();
    node(plan, plan, 0, opts, &mut out);
    out
}

/// The lines of EXPLAIN for a write, `Insert on t` (or Update, Delete) with `details`
/// (`Conflict Resolution: ...`) over `input`, the plan that makes or finds its rows. With
/// ANALYZE, `written` is what the write node did: as in PostgreSQL it yields rows only with
/// RETURNING.
pub fn write_lines(
    verb: &str,
    table: &str,
    details: &[String],
    input: &Plan,
    returning: bool,
    written: Option<NodeStats>,
    opts: &Options<'_>,
) -> Vec<String> {
    let mut top = format!("{verb} on {table}");
    if opts.costs {
        let rows = if returning { estimate_rows(input).round().max(1.0) as u64 } else { 0 };
        top += &format!("  (rows={rows})");
    }
    if let Some(st) = written.filter(|_| opts.profile.is_some()) {
        let rows = if returning { st.rows } else { 0 };
        if opts.timing {
            let ms = st.time.as_secs_f64() * 1000.0;
            top += &format!(" (actual time={ms:.3}..{ms:.3} rows={rows} loops=1)");
        } else {
            top += &format!(" (actual rows={rows} loops=1)");
        }
    }
    let mut out = vec![top];
    out.extend(details.iter().map(|d| format!("  {d}")));
    node(input, input, 1, opts, &mut out);
    out
}

/// PostgreSQL's `Rows Removed by Filter: N` line for `removed` rows over `loops` runs (per
/// run, as it shows them; none when that rounds to nothing).
fn removed_line(pad: &str, label: &str, removed: u64, loops: u64) -> Option<String> {
    let per_loop = removed as f64 / loops.max(1) as f64;
    (per_loop > 0.0).then(|| format!("{pad}Rows Removed by {label}: {per_loop:.0}"))
}

/// The suffix of a node's line: estimate and actual figures of `shown`.
fn figures(shown: &Plan, estimate: Option<f64>, opts: &Options<'_>) -> String {
    let mut s = String::new();
    if opts.costs {
        let rows = estimate.unwrap_or_else(|| estimate_rows(shown));
        s += &format!("  (rows={})", rows.round().max(1.0) as u64);
    }
    if let Some(profile) = opts.profile {
        match profile.get(&node_id(shown)) {
            Some(st) if st.loops > 0 => {
                let rows = st.rows / st.loops;
                if opts.timing {
                    let ms = st.time.as_secs_f64() * 1000.0 / st.loops as f64;
                    s += &format!(" (actual time={ms:.3}..{ms:.3} rows={rows} loops={})", st.loops);
                } else {
                    s += &format!(" (actual rows={rows} loops={})", st.loops);
                }
            }
            _ => s += " (never executed)",
        }
    }
    s
}

/// Appends the lines of `plan`, whose rows are reported as `shown`'s (the outermost of a
/// chain of nodes EXPLAIN does not show).
fn node(plan: &Plan, shown: &Plan, depth: usize, opts: &Options<'_>, out: &mut Vec<String>) {
    let pad = if depth == 0 { String::new() } else { format!("{}->  ", "      ".repeat(depth - 1) + "  ") };
    let detail_pad = " ".repeat(pad.len() + 2);
    let mut line = |s: String| out.push(format!("{pad}{s}{}", figures(shown, None, opts)));
    match plan {
        Plan::One => line("Result".into()),
        Plan::Values(_) => line("Values Scan on \"*VALUES*\"".into()),
        Plan::Scan { table, lookup, index_cond, filter_text, alias, .. } => {
            let target = match alias {
                Some(a) => format!("{} {a}", table.name),
                None => table.name.clone(),
            };
            let index = match lookup {
                Some(Lookup::PrimaryKey(_)) => Some(table.pk_name.as_str()),
                Some(Lookup::Index { index, .. }) => Some(table.indexes[*index].name.as_str()),
                Some(Lookup::Range { index: None, .. } | Lookup::Keys { index: None, .. }) => {
                    Some(table.pk_name.as_str())
                }
                Some(Lookup::Range { index: Some(i), .. } | Lookup::Keys { index: Some(i), .. }) => {
                    Some(table.indexes[*i].name.as_str())
                }
                None => None,
            };
            match index {
                Some(index) => {
                    line(format!("Index Scan using {index} on {target}"));
                    if let Some(cond) = index_cond {
                        out.push(format!("{detail_pad}Index Cond: {cond}"));
                    }
                }
                None => line(format!("Seq Scan on {target}")),
            }
            if let Some(f) = filter_text {
                out.push(format!("{detail_pad}Filter: {f}"));
                if let Some(st) = opts.profile.and_then(|p| p.get(&node_id(plan))) {
                    out.extend(removed_line(&detail_pad, "Filter", st.removed, st.loops));
                }
            }
        }
        Plan::CteRef(n) => line(format!("CTE Scan on {n}")),
        Plan::Function { name, .. } => line(format!("Function Scan on {name}")),
        Plan::With(ctes, body) => {
            node(body, shown, depth, opts, out);
            for (n, p) in ctes {
                out.push(format!("{detail_pad}CTE {n}"));
                node(p, p, depth + 1, opts, out);
            }
        }
        Plan::Filter(i, _, text) => {
            let start = out.len();
            node(i, shown, depth, opts, out);
            if let Some(text) = text {
                // A detail of the node below, after its own details (before its inputs).
                let label = match **i {
                    Plan::Join { kind: JoinKind::Inner | JoinKind::Cross, .. }
                    | Plan::HashJoin { kind: JoinKind::Inner | JoinKind::Cross, .. } => "Join Filter",
                    _ => "Filter",
                };
                let is_detail = |l: &String| {
                    l.strip_prefix(detail_pad.as_str()).is_some_and(|r| !r.starts_with(' ') && !r.starts_with('-'))
                };
                let at = start + 1 + out[start + 1..].iter().take_while(|l| is_detail(l)).count();
                // As PostgreSQL, a join's ON and the WHERE above it make one filter.
                let on = format!("{detail_pad}Join Filter: ");
                match out[start + 1..at].iter_mut().find(|l| l.starts_with(&on)) {
                    // (The rows the join's own filter removed are not counted: no count.)
                    Some(l) if label == "Join Filter" => *l = format!("{on}({} AND {text})", &l[on.len()..]),
                    _ => {
                        out.insert(at, format!("{detail_pad}{label}: {text}"));
                        let stats = opts.profile.map(|p| (p.get(&node_id(plan)), p.get(&node_id(i))));
                        if let Some((Some(filter), Some(input))) = stats {
                            let removed = input.rows.saturating_sub(filter.rows);
                            if let Some(l) = removed_line(&detail_pad, label, removed, filter.loops) {
                                out.insert(at + 1, l);
                            }
                        }
                    }
                }
            }
        }
        Plan::Project(i, _) | Plan::Trim(i, _) => node(i, shown, depth, opts, out),
        Plan::Join { left, right, kind, cond, .. } => {
            line(format!(
                "Nested Loop{}",
                match kind {
                    JoinKind::Left => " Left Join",
                    JoinKind::Right => " Right Join",
                    JoinKind::Full => " Full Join",
                    _ => "",
                }
            ));
            if let Some(cond) = cond {
                out.push(format!("{detail_pad}Join Filter: {cond}"));
            }
            node(left, left, depth + 1, opts, out);
            node(right, right, depth + 1, opts, out);
        }
        Plan::HashJoin { left, right, kind, cond, join_filter, build_left, .. } => {
            // As PostgreSQL, the outer (probe) input comes first, the hashed one under Hash;
            // building the left input turns a left join into a right one.
            let (probe, build) = if *build_left { (right, left) } else { (left, right) };
            let kind = match (kind, build_left) {
                (JoinKind::Left, false) | (JoinKind::Right, true) => " Left",
                (JoinKind::Right, false) | (JoinKind::Left, true) => " Right",
                (JoinKind::Full, _) => " Full",
                _ => "",
            };
            line(format!("Hash{kind} Join"));
            out.push(format!("{detail_pad}Hash Cond: {cond}"));
            if let Some(f) = join_filter {
                out.push(format!("{detail_pad}Join Filter: {f}"));
            }
            node(probe, probe, depth + 1, opts, out);
            let hash_pad = format!("{}->  ", "      ".repeat(depth) + "  ");
            out.push(format!("{hash_pad}Hash{}", figures(build, None, opts)));
            node(build, build, depth + 2, opts, out);
        }
        Plan::Aggregate { input, group_by, group_text, .. } => {
            line(if group_by.is_empty() { "Aggregate".into() } else { "HashAggregate".into() });
            if !group_text.is_empty() {
                out.push(format!("{detail_pad}Group Key: {}", group_text.join(", ")));
            }
            node(input, input, depth + 1, opts, out);
        }
        Plan::Sort(i, _, texts) => {
            line("Sort".into());
            out.push(format!("{detail_pad}Sort Key: {}", texts.join(", ")));
            node(i, i, depth + 1, opts, out);
        }
        Plan::Limit { input, .. } => {
            line("Limit".into());
            node(input, input, depth + 1, opts, out);
        }
        Plan::Recursive { base, step, .. } => {
            line("Recursive Union".into());
            node(base, base, depth + 1, opts, out);
            node(step, step, depth + 1, opts, out);
        }
        Plan::ProjectSet { input, .. } => {
            line("ProjectSet".into());
            node(input, input, depth + 1, opts, out);
        }
        Plan::Window { input, .. } => {
            line("WindowAgg".into());
            node(input, input, depth + 1, opts, out);
        }
        Plan::Distinct(i, _) | Plan::DistinctOn(i, _) => {
            line("Unique".into());
            node(i, i, depth + 1, opts, out);
        }
        Plan::SetOp { left, right, .. } => {
            line("Append".into());
            node(left, left, depth + 1, opts, out);
            node(right, right, depth + 1, opts, out);
        }
    }
}
