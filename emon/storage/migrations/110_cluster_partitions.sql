-- Cases spread over live instances (issue 11): one lease per partition of cases (``partition-<k>`` rows in
-- cluster_leases), a heartbeat per instance with an expiry (PostgreSQL's clock), and one evaluation
-- watermark per partition (written under that partition's lease, in the evaluation's own transaction).
ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS expires_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE IF NOT EXISTS eval_partition_watermarks (
    partitions integer NOT NULL,
    partition  integer NOT NULL,
    through    timestamptz NOT NULL,
    PRIMARY KEY (partitions, partition)
);
