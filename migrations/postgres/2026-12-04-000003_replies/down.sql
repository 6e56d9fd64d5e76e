DROP TABLE inbound_messages;
DROP INDEX round_links_reply_token_hash_key;
ALTER TABLE round_links DROP COLUMN reply_token_hash;
