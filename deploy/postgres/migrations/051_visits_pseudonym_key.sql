-- Issue 13: the key id travels with each pseudonym (shared/privacy.py, docs/pseudonym-keys.md).
-- `pseudonym_key` names the secret `client_pseudonym` was made under ('k0' = before key ids).
-- Pseudonyms under different keys never match: unique-client figures count them separately.
ALTER TABLE visits ADD COLUMN IF NOT EXISTS pseudonym_key text;
