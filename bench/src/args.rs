//! The bench's command line (clap derive): the same flags as before, so the commands in
//! BENCHMARKS.md still work. `--phase`, `--db` and `--schema` are internal: the bench passes them to
//! the child processes of `replay` and `parked`.

use crate::{ALL_WORKLOADS, DEFAULT_PG_URL};
use clap::Parser;

/// duraflow's benchmark: the BENCH.md workloads, one JSON line per workload on stdout.
#[derive(Parser, Clone, Debug)]
#[command(name = "duraflow-bench", version)]
pub(crate) struct Args {
    /// sqlite (WAL + synchronous=FULL, default) or postgres
    #[arg(long, default_value = "sqlite", value_parser = store)]
    pub store: String,
    /// Postgres URL
    #[arg(long, env = "DURAFLOW_BENCH_PG_URL", default_value = DEFAULT_PG_URL)]
    pub pg_url: String,
    /// Workloads to run, comma-separated
    #[arg(long, value_delimiter = ',', default_value = ALL_WORKLOADS, value_parser = workload)]
    pub workloads: Vec<String>,
    /// Workflows (or trials, or activities) for every workload named
    #[arg(short = 'n')]
    pub n: Option<usize>,
    /// Steps per workflow
    #[arg(short = 'k')]
    pub k: Option<usize>,
    /// Concurrency (workflows in flight)
    #[arg(short = 'c')]
    pub c: Option<usize>,
    /// Small sizes (not comparable with full runs)
    #[arg(long)]
    pub quick: bool,
    /// Seconds before the watchdog ends the run
    #[arg(long = "deadline", default_value_t = 3000)]
    pub deadline_s: u64,
    /// Heartbeat interval of the cancel workload's activity (ms)
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Delay between the starts of the cancel workload's trials (ms)
    #[arg(long, default_value_t = 20)]
    pub stagger_ms: u64,
    /// max_cached_workflows of the parked worker (default: the worker's default, 10,000)
    #[arg(long)]
    pub parked_cache: Option<usize>,
    #[arg(long, hide = true)]
    pub phase: Option<String>,
    #[arg(long, hide = true)]
    pub db: Option<String>,
    #[arg(long, hide = true)]
    pub schema: Option<String>,
}

fn store(s: &str) -> Result<String, String> {
    match s {
        "sqlite" | "sqlite-wal-full" => Ok("sqlite".into()),
        "postgres" | "pg" => Ok("postgres".into()),
        s => Err(format!("unknown store {s}: sqlite or postgres")),
    }
}

fn workload(w: &str) -> Result<String, String> {
    if ALL_WORKLOADS.split(',').any(|x| x == w) {
        Ok(w.to_string())
    } else {
        Err(format!("unknown workload {w}; known: {ALL_WORKLOADS}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmarks_md_commands_parse() {
        let a = Args::try_parse_from([
            "duraflow-bench",
            "--store",
            "pg",
            "--workloads",
            "chain-seq,cancel",
            "-n",
            "50",
            "-c",
            "4",
            "--quick",
            "--parked-cache",
            "100",
        ])
        .unwrap();
        assert_eq!(a.store, "postgres");
        assert_eq!(a.workloads, vec!["chain-seq", "cancel"]);
        assert_eq!((a.n, a.k, a.c), (Some(50), None, Some(4)));
        assert!(a.quick);
        assert_eq!(a.parked_cache, Some(100));
        let d = Args::try_parse_from(["duraflow-bench"]).unwrap();
        assert_eq!(d.store, "sqlite");
        assert_eq!(d.workloads.join(","), ALL_WORKLOADS);
        assert_eq!((d.deadline_s, d.tick_ms, d.stagger_ms), (3000, 10, 20));
        let bad = Args::try_parse_from(["duraflow-bench", "--workloads", "chain-seq,nope"]);
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("unknown workload nope"));
    }
}
