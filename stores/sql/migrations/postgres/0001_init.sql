-- clarion schema, PostgreSQL dialect.

CREATE TABLE clarion_notifications (
    id           uuid        NOT NULL PRIMARY KEY,
    kind         text        NOT NULL,
    subject_id   text        NOT NULL,
    subject_type text        NOT NULL,
    subject_name text,
    owner        text,
    severity     text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    labels       jsonb       NOT NULL,
    data         jsonb       NOT NULL,
    dedup_key    text        UNIQUE,
    created_at   timestamptz NOT NULL,
    read_at      timestamptz
);

-- Inbox paging (newest first) and the unread badge.
CREATE INDEX clarion_notifications_owner ON clarion_notifications (owner, id);
CREATE INDEX clarion_notifications_unread ON clarion_notifications (owner) WHERE read_at IS NULL;
-- Retention purge, oldest first.
CREATE INDEX clarion_notifications_created ON clarion_notifications (created_at);

CREATE TABLE clarion_deliveries (
    id              uuid        NOT NULL PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES clarion_notifications (id),
    channel         text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'in_flight', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- pending: when due; in_flight: when the claimed attempt was due.
    next_attempt_at timestamptz,
    lease_until     timestamptz,
    lease_token     uuid,
    last_error      text,
    sent_at         timestamptz,
    receipt         text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- Claims: due pending deliveries, and expired leases.
CREATE INDEX clarion_deliveries_due ON clarion_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX clarion_deliveries_lease ON clarion_deliveries (lease_until) WHERE status = 'in_flight';
-- Claim assembly and purge.
CREATE INDEX clarion_deliveries_notification ON clarion_deliveries (notification_id);
-- Admin listing by status, newest first.
CREATE INDEX clarion_deliveries_status ON clarion_deliveries (status, id);
