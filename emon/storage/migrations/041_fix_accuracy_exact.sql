-- Evidence replays decisions from the fixes as stored, so the accuracy must be stored exactly as the
-- engine used it (a float64 metre value); a real (float32) rounded 12.3 m to 12.300000190734863 m.
ALTER TABLE fixes ALTER COLUMN acc_m TYPE double precision;
