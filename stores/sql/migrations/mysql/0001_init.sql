-- clarion schema, MySQL / MariaDB dialect.
--
-- Ids and lease tokens are 16-byte UUIDs (UUIDv7 ids sort by creation);
-- timestamps are DATETIME(6) in UTC. Owners, dedup keys and channel names
-- are UTF-8 in VARBINARY (up to 255 characters), so they compare exactly as on
-- the other stores: MySQL's text collations ignore trailing spaces, and most
-- ignore case. MySQL has no partial indexes: the claim indexes lead with the
-- status.

CREATE TABLE clarion_notifications (
    id           BINARY(16)   NOT NULL PRIMARY KEY,
    kind         VARCHAR(64)  NOT NULL,
    subject_id   VARCHAR(255) NOT NULL,
    subject_type VARCHAR(32)  NOT NULL,
    subject_name VARCHAR(255) NULL,
    owner        VARBINARY(1020) NULL,
    severity     VARCHAR(16)  NOT NULL,
    occurred_at  DATETIME(6)  NOT NULL,
    labels       JSON         NOT NULL,
    data         JSON         NOT NULL,
    dedup_key    VARBINARY(1020) NULL,
    created_at   DATETIME(6)  NOT NULL,
    read_at      DATETIME(6)  NULL,
    UNIQUE KEY clarion_notifications_dedup (dedup_key),
    -- Inbox paging (newest first) and the unread badge.
    KEY clarion_notifications_owner (owner, id),
    KEY clarion_notifications_unread (owner, read_at),
    -- Retention purge, oldest first.
    KEY clarion_notifications_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE clarion_deliveries (
    id              BINARY(16)   NOT NULL PRIMARY KEY,
    notification_id BINARY(16)   NOT NULL,
    channel         VARBINARY(1020) NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    attempts        INT          NOT NULL DEFAULT 0,
    -- pending: when due; in_flight: when the claimed attempt was due.
    next_attempt_at DATETIME(6)  NULL,
    lease_until     DATETIME(6)  NULL,
    lease_token     BINARY(16)   NULL,
    last_error      TEXT         NULL,
    sent_at         DATETIME(6)  NULL,
    receipt         TEXT         NULL,
    created_at      DATETIME(6)  NOT NULL,
    updated_at      DATETIME(6)  NOT NULL,
    -- Claims: due pending deliveries, and expired leases.
    KEY clarion_deliveries_due (status, next_attempt_at),
    KEY clarion_deliveries_lease (status, lease_until),
    -- Claim assembly and purge.
    KEY clarion_deliveries_notification (notification_id),
    -- Admin listing by status, newest first.
    KEY clarion_deliveries_status (status, id),
    CONSTRAINT clarion_deliveries_notification_fk
        FOREIGN KEY (notification_id) REFERENCES clarion_notifications (id),
    CONSTRAINT clarion_deliveries_status_check
        CHECK (status IN ('pending', 'in_flight', 'sent', 'dead'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
