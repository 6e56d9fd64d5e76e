-- Undoes the initial migration: tables in reverse order of creation, so that
-- nothing is dropped while another table still refers to it. Their indexes go
-- with them.
DROP TABLE rate_limits;
DROP TABLE suppressed_addresses;
DROP TABLE deliveries;
DROP TABLE prompt_usage;
DROP TABLE circle_prompts;
DROP TABLE support_messages;
DROP TABLE pairings;
DROP TABLE action_tokens;
DROP TABLE follow_throughs;
DROP TABLE commitments;
DROP TABLE away_periods;
DROP TABLE round_skips;
DROP TABLE check_ins;
DROP TABLE round_links;
DROP TABLE rounds;
DROP TABLE sessions;
DROP TABLE sign_in_tokens;
DROP TABLE invites;
DROP TABLE memberships;
DROP TABLE circles;
DROP TABLE people;
