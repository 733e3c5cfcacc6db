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

/// A notifier shut down right after it started leaves no transaction open:
/// its upkeep purges at once, and a purge cut off mid-transaction keeps its
/// locks until sqlx sends the queued rollback on the connection's next use
/// (a `DROP SCHEMA` or a migration elsewhere would wait on them). The check
/// runs on another thread while this runtime is blocked, as a test's cleanup
/// in `Drop` does, so nothing gets the chance to flush such a rollback.
#[tokio::test]
async fn shutdown_leaves_no_transaction_open() {
    use clarion_core::notifier::Notifier;
    let (schema, options) = clarion_testkit::databases::create_postgres_schema().await;
    let app = format!("clarion-shutdown-{schema}");
    let store = clarion_sql::PostgresStore::connect_with(options.application_name(&app), true)
        .await
        .unwrap();
    for round in 0..50 {
        let notifier = Notifier::builder().store(store.clone()).build().unwrap();
        let running = notifier.start();
        tokio::task::yield_now().await;
        running.shutdown(std::time::Duration::from_secs(5)).await;
        let app = app.clone();
        let open = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = clarion_testkit::databases::postgres_admin().await;
                    sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM pg_stat_activity \
                         WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
                    )
                    .bind(&app)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap()
                })
        })
        .join()
        .unwrap();
        assert_eq!(open, 0, "round {round}: a transaction was left open");
    }
    store.close().await;
    common::drop_postgres_schema(schema);
}
