-- Evaluation state is written packed (emon.geofence.state.CaseState.pack: msgpack, ≈ a fifth of the JSON,
-- and no JSON to build or parse on every batch). A state written before, or given as a JSON document,
-- stays in `state`; a row holds one or the other.
ALTER TABLE eval_state ADD COLUMN IF NOT EXISTS packed bytea;
ALTER TABLE eval_state ALTER COLUMN state DROP NOT NULL;
