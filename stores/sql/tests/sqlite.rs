//! The store conformance suite, the transactional outbox and the
//! reliability tests against sqlite.
#![cfg(feature = "sqlite")]

mod common;

common::sql_store_tests!(crate::common::sqlite);

#[tokio::test]
async fn crash_with_sigkill_mid_run_loses_nothing() {
    let db = common::sqlite().await;
    common::chaos::crash_and_restart(&db.url, 5_000).await;
}

#[tokio::test]
async fn open_selects_the_store_by_url_and_creates_the_file() {
    let path = common::sqlite_path();
    let url = format!("sqlite://{}", path.display());
    let store = clarion_sql::open(&url, &Default::default()).await.unwrap();
    assert!(path.exists(), "the database file is created");
    assert_eq!(store.counts().await.unwrap(), vec![]);
    drop(store);
    let err = clarion_sql::open("redis://localhost", &Default::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("unsupported store URL scheme \"redis\""),
        "{err}"
    );
    // Without migrations nothing is created: the first query names the problem.
    let path2 = common::sqlite_path();
    let config: clarion_core::config::StoreConfig = toml::from_str("migrate = false").unwrap();
    let bare = clarion_sql::open(&format!("sqlite://{}", path2.display()), &config)
        .await
        .unwrap();
    let err = bare.counts().await.unwrap_err();
    assert!(err.to_string().contains("no such table"), "{err}");
    for p in [path, path2] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
}

#[tokio::test]
async fn sqlite_memory_url_works() {
    let store = clarion_sql::open("sqlite::memory:", &Default::default())
        .await
        .unwrap();
    assert_eq!(store.unread_count("alice").await.unwrap(), 0);
}

#[tokio::test]
async fn store_sync_picks_sqlites_synchronous_setting() {
    use clarion_sql::sqlx::Row;
    for (setting, expected) in [("", 2), ("sync = \"full\"", 2), ("sync = \"normal\"", 1)] {
        let path = common::sqlite_path();
        let config: clarion_core::config::StoreConfig = toml::from_str(setting).unwrap();
        let store =
            clarion_sql::SqliteStore::open(&format!("sqlite://{}", path.display()), &config)
                .await
                .unwrap();
        let row = clarion_sql::sqlx::query("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>(0), expected, "{setting:?}");
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    // The key names itself when the store is not SQLite.
    let config: clarion_core::config::StoreConfig = toml::from_str("sync = \"normal\"").unwrap();
    let err = clarion_sql::open("postgres://127.0.0.1/none", &config)
        .await
        .err()
        .unwrap();
    let err = clarion_core::ConfigError::from(err);
    assert_eq!(err.path(), Some("store.sync"), "{err}");
}
