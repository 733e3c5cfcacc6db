//! The store conformance suite, the transactional outbox and the
//! reliability tests against postgres.
#![cfg(feature = "postgres")]

mod common;

mod conformance {
    clarion_testkit::store_conformance_tests!(crate::common::postgres());
}

/// Not a test: the entry point of the child worker processes.
#[test]
fn chaos_child_entry() {
    if std::env::var(common::chaos::ROLE).is_err() {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::chaos::child_main());
}

#[tokio::test]
async fn outbox_commits_with_the_transaction() {
    common::outbox::outbox_commits_with_the_transaction(&common::postgres().await.store).await;
}

#[tokio::test]
async fn outbox_rolls_back_with_the_transaction() {
    common::outbox::outbox_rolls_back_with_the_transaction(&common::postgres().await.store).await;
}

#[tokio::test]
async fn outbox_duplicate_keeps_the_transaction_usable() {
    common::outbox::outbox_duplicate_keeps_the_transaction_usable(&common::postgres().await.store)
        .await;
}

#[tokio::test]
async fn emit_in_commits_and_wake_delivers() {
    common::emit_in::emit_in_commits_and_wake_delivers(&common::postgres().await.store).await;
}

#[tokio::test]
async fn emit_in_rolls_back_with_the_transaction() {
    common::emit_in::emit_in_rolls_back_with_the_transaction(&common::postgres().await.store).await;
}

#[tokio::test]
async fn emit_in_duplicate_invalid_and_unrouted() {
    common::emit_in::emit_in_duplicate_invalid_and_unrouted(&common::postgres().await.store).await;
}

#[tokio::test]
async fn oversized_and_nul_input_is_invalid() {
    common::outbox::oversized_and_nul_input_is_invalid(&common::postgres().await.store).await;
}

#[tokio::test]
async fn purge_in_bounded_batches() {
    common::outbox::purge_in_bounded_batches(&common::postgres().await.store).await;
}

#[tokio::test]
async fn crash_with_sigkill_mid_run_loses_nothing() {
    let db = common::postgres().await;
    common::chaos::crash_and_restart(&db.url, 5_000).await;
}

#[tokio::test]
async fn three_dispatcher_processes_deliver_each_exactly_once() {
    let db = common::postgres().await;
    common::chaos::many_instances(&db.url, &db.store, 10_000).await;
}

#[tokio::test]
async fn open_selects_the_store_by_url() {
    let db = common::postgres().await;
    let store = clarion_sql::open(&db.url, &Default::default())
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), vec![]);
}
