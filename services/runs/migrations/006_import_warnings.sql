-- What an import noticed in its report without refusing it (JSON array of strings).
ALTER TABLE imports ADD COLUMN warnings TEXT;
