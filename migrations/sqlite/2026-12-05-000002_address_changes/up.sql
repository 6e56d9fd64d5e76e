-- A change of address waiting for the new address to confirm it: the
-- address, and the hash of the emailed link's token. One person may have
-- one usable link at a time; asking again ends the earlier one.
CREATE TABLE address_changes (
    id INTEGER PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX address_changes_token_hash_key ON address_changes (token_hash);
CREATE INDEX address_changes_person_id_idx ON address_changes (person_id);
