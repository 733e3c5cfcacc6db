-- The admin listing by status had an index on (status, id) over every row:
-- each status change added an entry, two per delivery on the claim-and-
-- complete path, about a quarter of the index work of a delivery. Only dead
-- letters need their own index (the dead-letter queue is listed newest
-- first); sent deliveries, the bulk of the table, are listed through the
-- primary key, pending and in-flight ones through the claim indexes.
DROP INDEX clarion_deliveries_status;
CREATE INDEX clarion_deliveries_dead ON clarion_deliveries (id) WHERE status = 'dead';
