//! The store conformance suite, the transactional outbox and the
//! reliability tests against postgres.
#![cfg(feature = "postgres")]

mod common;

common::sql_store_tests!(crate::common::postgres);

#[tokio::test]
async fn crash_with_sigkill_mid_run_loses_nothing() {
    let db = common::postgres().await;
    common::chaos::crash_and_restart(&db.url, 5_000).await;
}

#[tokio::test]
async fn three_dispatcher_processes_deliver_each_exactly_once() {
    let db = common::postgres().await;
    common::chaos::many_instances(&db.url, 10_000).await;
}

#[tokio::test]
async fn open_selects_the_store_by_url() {
    let db = common::postgres().await;
    let store = clarion_sql::open(&db.url, &Default::default())
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), vec![]);
}
