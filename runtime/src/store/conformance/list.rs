//! `list`'s filters (id prefix, start-time window) and paging, and `count_by_status`.

use super::support::*;
use crate::store::StatusCounts;

pub(super) async fn check_list_filters_and_paging(s: &dyn StoreBackend) {
    // Five workflows, each started after the previous one: order-1, order-2, other-1, order-3, ord;
    // order-2 (of the other type) completes.
    let ids_in_order = ["order-1", "order-2", "other-1", "order-3", "ord"];
    let mut started = Vec::new();
    for id in ids_in_order {
        let wtype = if id == "order-2" { WT2 } else { WT };
        s.create_workflow(new_wf(id, wtype, Q, None)).await.unwrap();
        let t = describe(s, id).await.started_ms;
        started.push(t);
        sleep_past(t).await;
    }
    let claimed = s
        .claim_workflow_tasks(WORKER, &v(&[Q]), &v(&[WT2]), 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    commit_ok(
        s,
        commit(
            c,
            1,
            vec![EventKind::WorkflowCompleted { result: json!(2) }],
        ),
    )
    .await;

    let ids = |filter: ListFilter| async move {
        s.list(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.workflow_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(ListFilter::all().id_prefix("order-")).await,
        vec!["order-3", "order-2", "order-1"],
        "prefix, newest first"
    );
    assert_eq!(
        ids(ListFilter::all().id_prefix("ord")).await,
        vec!["ord", "order-3", "order-2", "order-1"]
    );
    assert_eq!(
        ids(ListFilter::all().id_prefix("%")).await,
        Vec::<String>::new(),
        "a prefix is matched literally, not as a pattern"
    );
    assert_eq!(
        ids(ListFilter::all()
            .id_prefix("order-")
            .status(WorkflowStatus::Running))
        .await,
        vec!["order-3", "order-1"]
    );
    assert_eq!(
        ids(ListFilter::all().started_after_ms(started[2])).await,
        vec!["ord", "order-3", "other-1"],
        "started at or after"
    );
    assert_eq!(
        ids(ListFilter::all().started_before_ms(started[2])).await,
        vec!["order-2", "order-1"],
        "started strictly before"
    );
    assert_eq!(
        ids(ListFilter::all()
            .started_after_ms(started[1])
            .started_before_ms(started[3]))
        .await,
        vec!["other-1", "order-2"]
    );

    // Paging: pages of two, newest first, cover everything once.
    let mut pages = Vec::new();
    for page in 0..3 {
        pages.push(ids(ListFilter::all().offset(page * 2).limit(2)).await);
    }
    assert_eq!(
        pages,
        vec![
            vec!["ord", "order-3"],
            vec!["other-1", "order-2"],
            vec!["order-1"]
        ]
    );
    assert!(ids(ListFilter::all().offset(5)).await.is_empty());
    assert_eq!(
        ids(ListFilter::all().id_prefix("order-").offset(1).limit(1)).await,
        vec!["order-2"]
    );

    // Counts by status follow the same filters, but not the status, limit or offset.
    let counts = s.count_by_status(&ListFilter::all()).await.unwrap();
    assert_eq!(
        counts,
        StatusCounts {
            running: 4,
            completed: 1,
            failed: 0,
            cancelled: 0
        }
    );
    assert_eq!(counts.total(), 5);
    let counts = s
        .count_by_status(
            &ListFilter::all()
                .id_prefix("order-")
                .status(WorkflowStatus::Completed)
                .limit(1),
        )
        .await
        .unwrap();
    assert_eq!((counts.running, counts.completed), (2, 1));
    let counts = s
        .count_by_status(&ListFilter::all().started_before_ms(started[1]))
        .await
        .unwrap();
    assert_eq!((counts.running, counts.completed), (1, 0));
    let counts = s
        .count_by_status(&ListFilter::all().workflow_type(WT2))
        .await
        .unwrap();
    assert_eq!((counts.completed, counts.total()), (1, 1));
    assert_eq!(
        ids(ListFilter::all().workflow_type(WT).id_prefix("order-")).await,
        vec!["order-3", "order-1"]
    );
}
