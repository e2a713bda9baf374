-- Issue 20: a token can be confined to names starting with name_prefix (NULL: not confined),
-- and carries labels naming what it serves (a JSON object of strings).

ALTER TABLE tokens ADD COLUMN name_prefix TEXT;
ALTER TABLE tokens ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
