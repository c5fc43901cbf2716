//! Taking workflow tasks: tokens, leases, filters.

use super::support::*;

// claim_workflow_tasks

pub(super) async fn check_workflow_task_tokens_and_leases(s: &dyn StoreBackend) {
    create(s, "leased").await;
    let held = claim_wft(s, "leased").await;
    // A claimed task is not claimed again while its lease holds, by any worker.
    let again = s
        .claim_workflow_tasks("worker-2", &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "claimed twice within the lease: {again:?}"
    );

    create(s, "short").await;
    let first = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT]), 10, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].workflow_id, "short");
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Its lease ran out: it is claimed again, with a new token ("leased" is still held).
    let second = s
        .claim_workflow_tasks("worker-2", &v(&[Q]), &v(&[WT]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(second.len(), 1, "an expired lease is claimable: {second:?}");
    assert_eq!(second[0].workflow_id, "short");
    assert!(
        second[0].token > first[0].token,
        "each claim bumps the token: {} then {}",
        first[0].token,
        second[0].token
    );

    // The first claim is fenced: its commit writes nothing.
    let stale = s
        .commit_workflow_task(commit(&first[0], 1, vec![sched(1, AT)]))
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale token must not commit");
    assert_eq!(history(s, "short").await.len(), 1);
    assert!(claim_acts(s, &[Q], &[AT], 10).await.is_empty());
    // The current one commits.
    let out = commit_ok(s, commit(&second[0], 1, vec![])).await;
    assert_eq!(out.marker_seq, 2);
    assert!(!out.rerun);

    // The long-leased task was never touched.
    let out = commit_ok(s, commit(&held, 1, vec![])).await;
    assert_eq!(out.marker_seq, 2);
}

pub(super) async fn check_workflow_task_filters(s: &dyn StoreBackend) {
    s.create_workflow(new_wf("q1-t1", WT, Q, None))
        .await
        .unwrap();
    s.create_workflow(new_wf("q1-t2", WT2, Q, None))
        .await
        .unwrap();
    s.create_workflow(new_wf("q2-t1", WT, Q2, None))
        .await
        .unwrap();
    let claim = |queues: &'static [&'static str], types: &'static [&'static str], max: usize| async move {
        s.claim_workflow_tasks(WORKER, &v(queues), &v(types), max, LONG_LEASE)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.workflow_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(claim(&[Q2], &[WT2], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[], &[WT, WT2], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[Q, Q2], &[], 10).await, Vec::<String>::new());
    assert_eq!(claim(&[Q], &[WT], 10).await, vec!["q1-t1"]);
    assert_eq!(claim(&[Q], &[WT2], 10).await, vec!["q1-t2"]);
    assert_eq!(claim(&[Q2], &[WT], 10).await, vec!["q2-t1"]);
    assert_eq!(claim(&[Q, Q2], &[WT, WT2], 10).await, Vec::<String>::new());

    // `max` caps each claim.
    create(s, "m1").await;
    create(s, "m2").await;
    create(s, "m3").await;
    let a = claim(&[Q], &[WT], 2).await;
    assert_eq!(a.len(), 2, "{a:?}");
    let b = claim(&[Q], &[WT], 2).await;
    assert_eq!(b.len(), 1, "{b:?}");
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    all.sort();
    assert_eq!(all, vec!["m1", "m2", "m3"]);
    assert_eq!(claim(&[Q], &[WT], 0).await, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
