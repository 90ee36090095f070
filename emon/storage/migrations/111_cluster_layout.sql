-- One partition count and one cluster protocol for the whole cluster (review finding 2): the layout every
-- partition owner checks at each renew period and in every fenced write, and what each live instance runs
-- (its heartbeat), so the layout changes only once no instance of the old one is alive.
CREATE TABLE IF NOT EXISTS cluster_layout (
    id         smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    partitions integer NOT NULL,
    protocol   integer NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS partitions integer;
ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS protocol integer;
