-- clarion schema, SQLite dialect.
--
-- SQLite has no timestamp type: every *_at / lease_until column is an INTEGER
-- holding microseconds since the Unix epoch (UTC), so it sorts and compares as
-- time. Ids and lease tokens are 16-byte UUID blobs (UUIDv7 ids sort by
-- creation); labels and data are JSON text.

CREATE TABLE clarion_notifications (
    id           BLOB    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    subject_type TEXT    NOT NULL,
    subject_name TEXT,
    owner        TEXT,
    severity     TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    labels       TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    dedup_key    TEXT    UNIQUE,
    created_at   INTEGER NOT NULL,
    read_at      INTEGER
) WITHOUT ROWID;

-- Inbox paging (newest first) and the unread badge.
CREATE INDEX clarion_notifications_owner ON clarion_notifications (owner, id);
CREATE INDEX clarion_notifications_unread ON clarion_notifications (owner) WHERE read_at IS NULL;
-- Retention purge, oldest first.
CREATE INDEX clarion_notifications_created ON clarion_notifications (created_at);

CREATE TABLE clarion_deliveries (
    id              BLOB    NOT NULL PRIMARY KEY,
    notification_id BLOB    NOT NULL REFERENCES clarion_notifications (id),
    channel         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'in_flight', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- pending: when due; in_flight: when the claimed attempt was due.
    next_attempt_at INTEGER,
    lease_until     INTEGER,
    lease_token     BLOB,
    last_error      TEXT,
    sent_at         INTEGER,
    receipt         TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Claims: due pending deliveries, and expired leases.
CREATE INDEX clarion_deliveries_due ON clarion_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX clarion_deliveries_lease ON clarion_deliveries (lease_until) WHERE status = 'in_flight';
-- Claim assembly and purge.
CREATE INDEX clarion_deliveries_notification ON clarion_deliveries (notification_id);
-- Admin listing by status, newest first.
CREATE INDEX clarion_deliveries_status ON clarion_deliveries (status, id);
