//! The table, the machine's description, and the section of docs/benchmarks.md.
//!
//! A row compares Bulwark with one other database on one workload. A rate (transactions or
//! operations per second) is better higher, a time (recovery, cold start) better lower; the
//! ratio column is oriented so that above 1.0 always means Bulwark is ahead:
//! Bulwark ÷ other for rates, other ÷ Bulwark for times.

use crate::stats::Latencies;
use crate::Result;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The heading of the section this program owns in docs/benchmarks.md.
pub const SECTION_HEADING: &str = "## Side by side with PostgreSQL 15 and SQLite";

/// One side's result on one row.
#[derive(Debug, Clone)]
pub enum Figure {
    /// A throughput with latency percentiles in milliseconds.
    Rate { per_s: f64, unit: &'static str, p50_ms: Option<f64>, p99_ms: Option<f64> },
    /// A duration.
    Time(Duration),
    /// A duration shown for reference, not compared (the task differs).
    Reference(Duration),
    /// The measurement failed; the reason.
    Failed(String),
}

impl Figure {
    /// A rate with the percentiles of `lat`.
    pub fn rate(per_s: f64, unit: &'static str, lat: &Latencies) -> Figure {
        Figure::Rate { per_s, unit, p50_ms: lat.quantile_ms(0.50), p99_ms: lat.quantile_ms(0.99) }
    }

    /// The value the ratio uses, if any.
    fn value(&self) -> Option<f64> {
        match self {
            Figure::Rate { per_s, .. } => Some(*per_s),
            Figure::Time(d) | Figure::Reference(d) => Some(d.as_secs_f64()),
            Figure::Failed(_) => None,
        }
    }

    /// The three cells: the figure, p50, p99.
    fn cells(&self) -> [String; 3] {
        match self {
            Figure::Rate { per_s, unit, p50_ms, p99_ms } => {
                let ms = |v: &Option<f64>| v.map_or("-".into(), sig3);
                [format!("{} {unit}", sig3(*per_s)), ms(p50_ms), ms(p99_ms)]
            }
            Figure::Time(d) => [format!("{} s", sig3(d.as_secs_f64())), "-".into(), "-".into()],
            Figure::Reference(d) => [format!("({} s)", sig3(d.as_secs_f64())), "-".into(), "-".into()],
            Figure::Failed(why) => [format!("failed: {}", short(why)), "-".into(), "-".into()],
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was run.
    pub workload: String,
    /// "PostgreSQL" or "SQLite".
    pub other: &'static str,
    /// Bulwark's result.
    pub bulwark: Figure,
    /// The other database's result.
    pub theirs: Figure,
    /// What else the reader needs to know about this row.
    pub note: String,
}

impl Row {
    /// Above 1.0 means Bulwark is ahead (see the module doc).
    pub fn ratio(&self) -> Option<f64> {
        let (b, t) = (self.bulwark.value()?, self.theirs.value()?);
        match (&self.bulwark, &self.theirs) {
            (Figure::Time(_), Figure::Time(_)) if b > 0.0 => Some(t / b),
            (Figure::Rate { .. }, Figure::Rate { .. }) if t > 0.0 => Some(b / t),
            _ => None,
        }
    }
}

/// The rows as a Markdown table (readable as plain text too).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | Bulwark | p50 ms | p99 ms | other | other's | p50 ms | p99 ms | ratio | notes |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let [b, b50, b99] = r.bulwark.cells();
        let [t, t50, t99] = r.theirs.cells();
        let ratio = r.ratio().map_or("-".into(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "| {} | {b} | {b50} | {b99} | {} | {t} | {t50} | {t99} | {ratio} | {} |\n",
            r.workload, r.other, r.note
        ));
    }
    out
}

/// Per row, the lowest and highest figure of each side over several runs.
pub fn spread(runs: &[Vec<Row>]) -> String {
    let mut out = String::from("| workload | Bulwark, lowest - highest | other's, lowest - highest | ratio, lowest - highest |\n|---|---|---|---|\n");
    let Some(first) = runs.first() else { return out };
    for (i, row) in first.iter().enumerate() {
        let side = |pick: &dyn Fn(&Row) -> Option<f64>| {
            let vals: Vec<f64> = runs.iter().filter_map(|r| r.get(i)).filter_map(pick).collect();
            let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if vals.is_empty() {
                "-".to_string()
            } else {
                format!("{} - {}", sig3(lo), sig3(hi))
            }
        };
        let b = side(&|r: &Row| r.bulwark.value());
        let t = side(&|r: &Row| r.theirs.value());
        let ratio = side(&|r: &Row| r.ratio());
        out.push_str(&format!("| {} | {b} | {t} | {ratio} |\n", row.workload));
    }
    out
}

/// Three significant digits, without exponent notation.
fn sig3(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        let decimals = (2.0 - a.log10().floor()) as usize;
        format!("{x:.decimals$}")
    }
}

/// The first line of an error, cut to fit a table cell.
fn short(why: &str) -> String {
    /// The longest error text a cell shows, in characters.
    const CELL_CHARS_MAX: usize = 80;
    let line = why.lines().next().unwrap_or("").replace('|', "/");
    line.chars().take(CELL_CHARS_MAX).collect()
}

/// A program's first output line, or "unknown".
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string()))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The line of a /proc file that starts with `key`, after its colon.
fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// The type of the filesystem that holds `dir` ("ext4", "tmpfs"), if findmnt knows it.
pub fn fs_type(dir: &Path) -> Option<String> {
    let dir = dir.to_string_lossy().into_owned();
    Some(first_line("findmnt", &["-n", "-o", "FSTYPE", "-T", &dir])).filter(|t| t != "unknown")
}

/// The current date and time in UTC.
pub fn now_utc() -> String {
    first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// The machine, the filesystem of `dir` and the software versions, in one paragraph.
pub fn machine(dir: &Path) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let ram_gib = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("unknown".into(), |kb| format!("{:.1} GiB", kb / (1024.0 * 1024.0)));
    let dir_s = dir.to_string_lossy().into_owned();
    let fs = first_line("findmnt", &["-n", "-o", "SOURCE,FSTYPE", "-T", &dir_s]);
    let device = fs.split_whitespace().next().unwrap_or("").trim_start_matches("/dev/").to_string();
    let rotational = std::fs::read_to_string(format!("/sys/block/{device}/queue/rotational"))
        .map(|r| if r.trim() == "1" { ", rotational" } else { ", non-rotational" })
        .unwrap_or("");
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "{cpus} CPUs ({model}), {ram_gib} RAM; data directories in {} on {fs}{rotational}; kernel {}; \
         load average at the start {load}. {}, {}, SQLite {} (system library).",
        dir.display(),
        first_line("uname", &["-r"]),
        first_line(&format!("{}/postgres", crate::servers::PG_BIN), &["--version"]),
        first_line("pgbench", &["--version"]),
        rusqlite::version(),
    )
}

/// Replaces the section under [`SECTION_HEADING`] in the file at `path` (up to the next
/// `## ` heading), or appends it if the file has none.
pub fn write_section(path: &Path, section: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let lines: Vec<&str> = old.lines().collect();
    let new = match lines.iter().position(|l| l.trim_end() == SECTION_HEADING) {
        Some(start) => {
            let end =
                lines[start + 1..].iter().position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
            let mut text = lines[..start].join("\n");
            text.push('\n');
            text.push_str(section);
            if end < lines.len() {
                text.push('\n');
                text.push_str(&lines[end..].join("\n"));
                text.push('\n');
            }
            text
        }
        None => format!("{}\n\n{section}", old.trim_end()),
    };
    std::fs::write(path, new).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_above_one_means_bulwark_ahead() {
        let rate = |per_s| Figure::Rate { per_s, unit: "tps", p50_ms: None, p99_ms: None };
        let row = |bulwark, theirs| Row { workload: "w".into(), other: "o", bulwark, theirs, note: String::new() };
        assert_eq!(row(rate(200.0), rate(100.0)).ratio(), Some(2.0));
        let secs = |s| Figure::Time(Duration::from_secs(s));
        assert_eq!(row(secs(1), secs(4)).ratio(), Some(4.0));
        assert_eq!(row(Figure::Failed("x".into()), rate(1.0)).ratio(), None);
        assert_eq!(row(secs(1), Figure::Reference(Duration::from_secs(4))).ratio(), None);
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(12345.6), "12346");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(1.2345), "1.23");
        assert_eq!(sig3(0.012345), "0.0123");
    }

    #[test]
    fn the_section_is_replaced_up_to_the_next_heading() {
        let path = std::env::temp_dir().join(format!("bulwark-bench-section-{}", std::process::id()));
        std::fs::write(&path, format!("# B\n\n## A\n\na\n\n{SECTION_HEADING}\n\nold\n\n## C\n\nc\n")).unwrap();
        write_section(&path, &format!("{SECTION_HEADING}\n\nnew\n")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("# B\n\n## A\n\na\n\n{SECTION_HEADING}\n\nnew\n\n## C\n\nc\n"));
        std::fs::write(&path, "# B\n").unwrap();
        write_section(&path, &format!("{SECTION_HEADING}\n\nnew\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("# B\n\n{SECTION_HEADING}\n\nnew\n"));
        let _ = std::fs::remove_file(&path);
    }
}
