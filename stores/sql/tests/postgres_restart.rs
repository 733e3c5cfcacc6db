//! PostgreSQL restarted under a running dispatcher: it logs, backs off,
//! resumes, and loses nothing. A test binary of its own, so that no other
//! test of this crate runs while the server is down.
#![cfg(feature = "postgres")]

mod common;

use std::time::Duration;

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster under /etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a cluster version");
    let status = std::process::Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            "restart",
            "-m",
            "fast",
        ])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart failed: {status}");
}

#[tokio::test]
async fn dispatcher_survives_a_postgres_restart() {
    let db = common::postgres().await;
    let receiver = common::chaos::Receiver::start().await;
    let events = 3_000;
    let mut child = common::chaos::spawn_child(&db.url, &receiver, events, 5, true);
    common::chaos::wait_received(&mut child, &receiver, 500, Duration::from_secs(120)).await;
    let at_restart = receiver.received();
    tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    eprintln!("PostgreSQL restarted after {at_restart} deliveries");
    common::chaos::finish(child, Duration::from_secs(300)).await;
    let (distinct, duplicates) = receiver.tally();
    println!(
        "postgres restart: {events} events, {distinct} delivered after a restart at \
         {at_restart}, lost {}, duplicates {duplicates}",
        events - distinct
    );
    assert_eq!(distinct, events, "deliveries were lost");
}
