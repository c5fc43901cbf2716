//! The command line, declared with clap's derive.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Look at and operate duraflow workflows, in a SQLite file or a Postgres database.
#[derive(Debug, Parser)]
#[command(
    name = "duraflow",
    term_width = 100,
    version,
    after_help = "Examples:\n  duraflow --db app.db list --status running\n  duraflow --db app.db history order-17\n  duraflow --postgres postgres://user@host/db describe order-17\n  duraflow --db app.db ui"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Print JSON instead of tables (list, describe, history, start, cancel, replay).
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Which store to open.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The SQLite file a duraflow store lives in (it must exist). Wins over `--postgres`.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Store")]
    pub db: Option<PathBuf>,

    /// A Postgres database, e.g. postgres://user@host:5432/db.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DURAFLOW_POSTGRES_URL",
        hide_env_values = true,
        help_heading = "Store"
    )]
    pub postgres: Option<String>,

    /// The Postgres schema duraflow's tables are in (default: the connection's search path).
    #[arg(
        long,
        global = true,
        value_name = "SCHEMA",
        env = "DURAFLOW_POSTGRES_SCHEMA",
        hide_env_values = true,
        help_heading = "Store"
    )]
    pub postgres_schema: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List workflows, newest first.
    List(ListArgs),
    /// Show a workflow: status, result or error, pending activities.
    Describe {
        /// The workflow id.
        id: String,
        /// Describe this run of the workflow id (an earlier run: continue-as-new, a reset, a
        /// reused id) instead of its current one.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "runs")]
        run_id: Option<String>,
        /// List every run of the workflow id, oldest first (the chain of continue-as-new).
        #[arg(long)]
        runs: bool,
    },
    /// Show a workflow's event history (`--json`: the JSON that replay reads).
    History {
        /// The workflow id.
        id: String,
        /// Show payloads in full instead of shortened.
        #[arg(long)]
        full: bool,
        /// The history of this run of the workflow id (see `describe ID --runs`) instead of its
        /// current one.
        #[arg(long, value_name = "RUN_ID")]
        run_id: Option<String>,
    },
    /// Start a workflow by its registered name, with JSON input; a worker that serves it runs it.
    Start {
        /// The registered workflow name.
        #[arg(value_name = "TYPE")]
        workflow_type: String,
        /// The new workflow's id (unique in the store).
        id: String,
        /// The input as JSON, e.g. '{"arg1": 1, "arg2": 2}' (default: null).
        #[arg(value_name = "JSON")]
        input: Option<String>,
        /// The task queue (default: the registered definition's, else `default`).
        #[arg(long, value_name = "QUEUE")]
        task_queue: Option<String>,
        /// Wait for the workflow to end and print its result.
        #[arg(long)]
        wait: bool,
    },
    /// Ask a workflow to cancel.
    Cancel {
        /// The workflow id.
        id: String,
        /// Wait for the workflow to end.
        #[arg(long)]
        wait: bool,
    },
    /// End a running workflow at once with a reason: recorded as failed `Terminated`; its code
    /// does not run again (no cleanup, unlike `cancel`). The way out for a held workflow.
    Terminate {
        /// The workflow id.
        id: String,
        /// Why, recorded in its history.
        #[arg(long)]
        reason: String,
    },
    /// Reset a workflow to one of its workflow tasks: a new run replays its history up to that
    /// task and the current code makes the task's decisions again (the current run ends
    /// `Terminated`). `duraflow history ID` numbers the tasks: each `workflow_task_completed`
    /// event ends one, from 1.
    Reset {
        /// The workflow id.
        id: String,
        /// The workflow task, from 1, whose decisions are made again.
        #[arg(long, value_name = "N")]
        to_task: u64,
        /// Why, recorded in both runs.
        #[arg(long)]
        reason: String,
    },
    /// Send a signal to a workflow, by its name, with JSON input.
    Signal {
        /// The workflow id.
        id: String,
        /// The signal's name, as the workflow declares it.
        name: String,
        /// The signal's input as JSON (default: null).
        #[arg(value_name = "JSON")]
        input: Option<String>,
        /// A request id: the signal is recorded once however often it is sent with it.
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Serve the web UI: workflows with filters, and each run's timeline.
    Ui(UiArgs),
    /// Replay exported histories (`history --json` files, or folders of them) against this
    /// binary's workflow code; reports the first mismatch of each. Needs your definitions: run it
    /// from a binary of yours that calls `duraflow_cli::run(Registry::all())`.
    Replay {
        /// History files (JSON, as `duraflow history ID --json` writes them) or folders of them.
        #[arg(required = true, value_name = "FILES")]
        paths: Vec<PathBuf>,
    },
    /// Schedules: start a workflow on a cron expression or an interval (workers fire them).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

/// `duraflow schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule that starts a workflow, by its registered name, with JSON input.
    #[command(
        after_help = "Examples:\n  duraflow --db app.db schedule create nightly report '\"eu\"' --cron '0 3 * * *' --time-zone Europe/Paris\n  duraflow --db app.db schedule create sync sync_all --every 15m --overlap buffer-one"
    )]
    Create(ScheduleCreateArgs),
    /// List the schedules: spec, state, next start.
    List,
    /// Show a schedule: spec, policies, counters, recent starts, the next ticks.
    Describe {
        /// The schedule id.
        id: String,
    },
    /// Pause a schedule: no tick starts anything until it is resumed (a trigger still does).
    Pause {
        /// The schedule id.
        id: String,
        /// Why (shown by describe).
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
    },
    /// Resume a paused schedule; the ticks that passed while paused are not made up.
    Resume {
        /// The schedule id.
        id: String,
        /// Why (shown by describe).
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
    },
    /// Start the schedule's workflow now, through its overlap policy (paused or not).
    Trigger {
        /// The schedule id.
        id: String,
    },
    /// Delete a schedule; the workflows it started are left as they are.
    Delete {
        /// The schedule id.
        id: String,
    },
}

/// `duraflow schedule create`.
#[derive(Debug, Args)]
pub struct ScheduleCreateArgs {
    /// The new schedule's id (its workflows are `ID-<tick time>`).
    pub id: String,
    /// The registered workflow name to start.
    #[arg(value_name = "TYPE")]
    pub workflow_type: String,
    /// The workflow's input as JSON (default: null).
    #[arg(value_name = "JSON")]
    pub input: Option<String>,
    /// A cron expression: five fields (`0 3 * * *`), six with seconds first, or `@daily`.
    #[arg(
        long,
        value_name = "EXPR",
        required_unless_present = "every",
        conflicts_with = "every"
    )]
    pub cron: Option<String>,
    /// The cron expression's time zone, an IANA name (default: UTC).
    #[arg(long, value_name = "ZONE", requires = "cron")]
    pub time_zone: Option<String>,
    /// A fixed interval instead, aligned to the Unix epoch: `30s`, `15m`, `1h`, `1d`.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Shift the interval's ticks from the epoch's alignment (`--every 1h --offset 15m`).
    #[arg(long, value_name = "DURATION", requires = "every")]
    pub offset: Option<String>,
    /// What a due start does while the last run still runs.
    #[arg(long, value_enum, default_value = "skip")]
    pub overlap: OverlapArg,
    /// After downtime, make up the missed starts of this window before now (default: 365d).
    #[arg(long, value_name = "DURATION")]
    pub catchup_window: Option<String>,
    /// Create it paused, with this note.
    #[arg(long, value_name = "NOTE")]
    pub paused: Option<String>,
    /// The task queue (default: the registered definition's, else `default`).
    #[arg(long, value_name = "QUEUE")]
    pub task_queue: Option<String>,
}

/// An overlap policy, on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OverlapArg {
    /// Drop the due start.
    Skip,
    /// Start it when the running one ends (one waits at most).
    BufferOne,
    /// Start it beside the running one.
    AllowAll,
}

impl From<OverlapArg> for duraflow::OverlapPolicy {
    fn from(o: OverlapArg) -> Self {
        match o {
            OverlapArg::Skip => duraflow::OverlapPolicy::Skip,
            OverlapArg::BufferOne => duraflow::OverlapPolicy::BufferOne,
            OverlapArg::AllowAll => duraflow::OverlapPolicy::AllowAll,
        }
    }
}

/// `duraflow list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only workflows with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only workflows of this registered name.
    #[arg(long = "type", value_name = "TYPE")]
    pub workflow_type: Option<String>,
    /// Only workflow ids that start with this.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Only workflows started at or after this time: 2026-12-01T14:00:00Z, or an age like 2h.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// Only workflows started before this time: 2026-12-01T14:00:00Z, or an age like 30m.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Skip this many first (the next page starts at the previous offset + limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
}

/// A workflow status, on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatusArg {
    /// Not ended yet.
    Running,
    /// Returned a result.
    Completed,
    /// Returned an error.
    Failed,
    /// Ended cancelled.
    Cancelled,
}

impl From<StatusArg> for duraflow::WorkflowStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Running => duraflow::WorkflowStatus::Running,
            StatusArg::Completed => duraflow::WorkflowStatus::Completed,
            StatusArg::Failed => duraflow::WorkflowStatus::Failed,
            StatusArg::Cancelled => duraflow::WorkflowStatus::Cancelled,
        }
    }
}

/// `duraflow ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The address to serve on. Anything but a loopback address exposes every workflow's data.
    #[arg(long, default_value = "127.0.0.1:8233", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Allow the page to cancel workflows and send signals (read-only without it).
    #[arg(long)]
    pub allow_writes: bool,
    /// Also answer to this host name (repeatable); by default the UI answers only to IP addresses
    /// and localhost, a guard against DNS rebinding.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Serve this process's metrics and the workflows by status on /metrics (Prometheus format).
    #[arg(long)]
    pub metrics: bool,
}
