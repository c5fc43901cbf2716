//! The worker's liveness lease, renewed in the background, and the judging of other workers:
//! the attempts of a worker found dead are handed on within seconds (see `engine::liveness`).

use super::*;
use crate::engine::liveness::{attempt_lost, judge, ProcessState, Seen, Verdict};

/// How many of a lost worker's attempts are taken per transaction.
const BATCH: usize = 64;

/// Renews this worker's lease every third of it; judges the other workers' leases every sixth
/// (at most every 500 ms). Ends at the stop, removing the lease.
///
/// Leases are judged on the store's clock. On a virtual one (`TestEnv`) the lease is also renewed
/// when the clock has moved a third of it, and the clock does not skip on until it has been (a
/// `TimeHold`): a jump of 30 days leaves a live worker's lease expired only until its loop wakes,
/// and no judge sees it stay so for a lease period.
pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let lease = shared.opts.liveness_lease;
    let lease_ms = lease.as_millis() as i64;
    let renew_every = lease / 3;
    let renew_every_ms = (renew_every.as_millis() as i64).max(1);
    let judge_every = (lease / 6).min(Duration::from_millis(500));
    let clock = shared.store.clock.clone();
    let hold_key = format!("liveness:{}", shared.id);
    let me = shared.process_identity();
    let identity = me.to_string();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut next_renew = tokio::time::Instant::now();
    let mut next_renew_ms = shared.now_ms();
    let mut failing = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let store = &shared.store.backend;
        if tokio::time::Instant::now() >= next_renew || shared.now_ms() >= next_renew_ms {
            let renewing_at = shared.now_ms();
            match store
                .renew_worker_lease(&shared.id, &identity, lease_ms)
                .await
            {
                Ok(()) => {
                    if failing {
                        tracing::info!("liveness lease renewed again");
                    }
                    failing = false;
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(error = %e, "could not renew this worker's liveness lease; retrying");
                }
            }
            next_renew = tokio::time::Instant::now() + renew_every;
            next_renew_ms = renewing_at.saturating_add(renew_every_ms);
            if clock.is_virtual() {
                shared.store.hub.hold_time(
                    hold_key.clone(),
                    crate::store::hub::TimeHold {
                        due_ms: next_renew_ms,
                        cap_ms: None,
                    },
                );
            }
        }
        match store.worker_leases(&shared.id).await {
            Ok(leases) => {
                seen.retain(|w, _| leases.iter().any(|l| &l.worker_id == w));
                for l in leases {
                    let process = me.state_of(l.process.as_deref());
                    match judge(
                        &l,
                        seen.get(&l.worker_id).copied(),
                        process,
                        shared.now_ms(),
                        lease_ms,
                    ) {
                        Verdict::Alive => {
                            seen.remove(&l.worker_id);
                        }
                        Verdict::Suspect(s) => {
                            seen.insert(l.worker_id.clone(), s);
                        }
                        Verdict::Lost => {
                            seen.remove(&l.worker_id);
                            shared
                                .hand_on_lost(&l.worker_id, l.lease_expires_ms, process)
                                .await;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read the workers' leases"),
        }
        // On a virtual clock, a skip past the renewal wakes the loop at once.
        let virtual_renew = async {
            if clock.is_virtual() {
                clock.sleep_until_ms(next_renew_ms).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(judge_every) => {}
            _ = virtual_renew => {}
            _ = stop.changed() => {}
        }
    }
    if clock.is_virtual() {
        shared.store.hub.release_time(&hold_key);
    }
    if let Err(e) = shared.store.backend.end_worker_lease(&shared.id).await {
        tracing::debug!(error = %e, "could not remove this worker's liveness lease");
    }
}

impl Shared {
    /// This worker's process, as its liveness lease names it (an empty identity, which no judge
    /// can check, for a worker built `without_process_identity`).
    fn process_identity(&self) -> ProcessIdentity {
        if self.process_identity {
            ProcessIdentity::current()
        } else {
            ProcessIdentity {
                boot: String::new(),
                pid_ns: String::new(),
                pid: 0,
                start: String::new(),
            }
        }
    }

    /// Takes a lost worker's running attempts and hands each on at once, as a new attempt.
    async fn hand_on_lost(&self, worker_id: &str, lease_expires_ms: i64, process: ProcessState) {
        let store = &self.store.backend;
        let mut handed = 0usize;
        loop {
            let tasks = match store
                .claim_lost_attempts(worker_id, lease_expires_ms, BATCH)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, lost_worker = worker_id, "could not take a lost worker's attempts");
                    break;
                }
            };
            let n = tasks.len();
            for t in tasks {
                let resolution = attempt_lost(&t, self.now_ms());
                let details = t.heartbeat_details.clone();
                if let Err(e) = store
                    .finish_activity(t.task_id, t.token, resolution, details)
                    .await
                {
                    tracing::warn!(error = %e, "could not hand on a lost worker's attempt; the reaper will");
                }
                handed += 1;
            }
            if n < BATCH {
                break;
            }
        }
        if handed > 0 {
            tracing::warn!(
                lost_worker = worker_id,
                attempts = handed,
                how = if process == ProcessState::Ended {
                    "its process ended"
                } else {
                    "its liveness lease expired"
                },
                "a worker was lost; its running attempts were handed on (or failed, when their retry policy was spent)"
            );
            self.store.hub.wake_workers();
        }
    }
}

/// Who a worker's process is: the machine's boot, its pid namespace, its pid and the process's
/// start time (so a reused pid is not mistaken for it). Another worker on the same machine and in
/// the same pid namespace can tell at once whether it still runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcessIdentity {
    boot: String,
    pid_ns: String,
    pid: u32,
    start: String,
}

impl ProcessIdentity {
    pub(crate) fn current() -> ProcessIdentity {
        let pid = std::process::id();
        ProcessIdentity {
            boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            pid,
            start: start_time(pid).unwrap_or_default(),
        }
    }

    fn parse(s: &str) -> Option<ProcessIdentity> {
        let mut it = s.split('|');
        let id = ProcessIdentity {
            boot: it.next()?.to_string(),
            pid_ns: it.next()?.to_string(),
            pid: it.next()?.parse().ok()?,
            start: it.next()?.to_string(),
        };
        it.next().is_none().then_some(id)
    }

    /// Whether the process `other` names runs, as far as this process can tell.
    pub(crate) fn state_of(&self, other: Option<&str>) -> ProcessState {
        let Some(other) = other.and_then(ProcessIdentity::parse) else {
            return ProcessState::Unknown;
        };
        if self.boot.is_empty()
            || self.pid_ns.is_empty()
            || other.boot != self.boot
            || other.pid_ns != self.pid_ns
            || other.start.is_empty()
        {
            return ProcessState::Unknown;
        }
        match start_time(other.pid) {
            Some(start) if start == other.start => ProcessState::Running,
            // Gone, a zombie, or the pid now belongs to another process.
            _ => ProcessState::Ended,
        }
    }
}

impl std::fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.boot, self.pid_ns, self.pid, self.start
        )
    }
}

/// A live process's start time (field 22 of `/proc/<pid>/stat`); `None` if it is gone or a zombie.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (the state).
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    fields.get(19).map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_dead_one_does_not() {
        let me = ProcessIdentity::current();
        if me.boot.is_empty() {
            eprintln!("no /proc here: the lease alone decides");
            return;
        }
        assert_eq!(me.state_of(Some(&me.to_string())), ProcessState::Running);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut other = me.clone();
        other.pid = pid;
        other.start = start_time(pid).unwrap_or_else(|| "0".into());
        child.wait().unwrap();
        assert_eq!(me.state_of(Some(&other.to_string())), ProcessState::Ended);
        let mut elsewhere = other.clone();
        elsewhere.boot = "another-machine".into();
        assert_eq!(
            me.state_of(Some(&elsewhere.to_string())),
            ProcessState::Unknown
        );
        assert_eq!(me.state_of(None), ProcessState::Unknown);
        assert_eq!(me.state_of(Some("garbage")), ProcessState::Unknown);
    }
}
