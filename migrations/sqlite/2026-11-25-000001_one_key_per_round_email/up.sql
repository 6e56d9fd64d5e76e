-- A round email carries one key, its round link, and its one-click choices
-- and unsubscribe link name that key and a choice instead of a token row
-- each. A choice works once per key: its first use is recorded here.
CREATE TABLE round_link_uses (
    round_link_id BIGINT NOT NULL REFERENCES round_links (id) ON DELETE CASCADE,
    choice TEXT NOT NULL,
    used_at TIMESTAMP NOT NULL,
    PRIMARY KEY (round_link_id, choice)
);
