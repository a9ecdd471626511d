-- A phone's serial number (on its box label): Yealink's cloud wants it where a MAC alone is
-- refused (RPS on YMCS v2 for ordinary accounts). Optional.
ALTER TABLE phones ADD COLUMN sn TEXT;
