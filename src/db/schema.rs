//! Diesel's view of the database: one `table!` per table, written by hand in
//! SQL types that both backends share (`BigInt`, `Integer`, `Text`, `Bool`,
//! `Timestamp`, `Date`, `Nullable<_>`), so one set of queries serves SQLite and
//! PostgreSQL through the multi-connection.
//!
//! The tables are created by `migrations/sqlite/` and `migrations/postgres/`.
//! Both directories must match this file: same tables, same columns in the same
//! order (`Queryable` maps fields by position), same nullability. Change the
//! three together. Timestamps are UTC `NaiveDateTime`s; tokens are stored only
//! as SHA-256 hex digests.

diesel::table! {
    /// Everyone who has signed in or been invited. `email` is stored lower-cased.
    people (id) {
        id -> BigInt,
        email -> Text,
        display_name -> Text,
        created_at -> Timestamp,
        /// Set when the person deleted their data and the row was anonymised.
        deleted_at -> Nullable<Timestamp>,
        /// The IANA zone they read times in; empty until they choose.
        time_zone -> Nullable<Text>,
        /// The hash of their calendar feed's key; empty until they ask.
        calendar_key_hash -> Nullable<Text>,
    }
}

diesel::table! {
    circles (id) {
        id -> BigInt,
        name -> Text,
        purpose -> Text,
        agreements -> Text,
        /// Canonical cadence string, parsed by `Cadence::parse`.
        cadence -> Text,
        /// IANA zone name, e.g. `America/Toronto`.
        time_zone -> Text,
        round_length_minutes -> Integer,
        /// 3 to 12 (checked by the database).
        size_cap -> Integer,
        deck -> Text,
        /// `active`, `paused` or `archived`.
        status -> Text,
        paused_reason -> Nullable<Text>,
        /// When the next round opens, in UTC; the scheduler's only cursor.
        next_round_at -> Nullable<Timestamp>,
        /// A deck prompt id or a `circle_prompts.prompt_key`.
        pinned_prompt_id -> Nullable<Text>,
        /// Hash of the reusable invite link's token.
        invite_token_hash -> Nullable<Text>,
        invite_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// Raised whenever its rounds' times may change, for calendars.
        schedule_version -> Integer,
    }
}

diesel::table! {
    /// A person in a circle. Unique on `(circle_id, person_id)`.
    memberships (id) {
        id -> BigInt,
        circle_id -> BigInt,
        person_id -> BigInt,
        /// `facilitator` or `member`.
        role -> Text,
        /// `active`, `left` or `removed`.
        status -> Text,
        muted -> Bool,
        unsubscribe_token_hash -> Text,
        joined_at -> Timestamp,
        left_at -> Nullable<Timestamp>,
        /// The audience the member's next reflection starts from.
        shares_reflections -> Bool,
        /// When their check-in email arrives: `None` when the round
        /// opens, else `HH:MM` in their own zone.
        check_in_at -> Nullable<Text>,
        /// Whether a facilitator is emailed when someone joins.
        join_notices -> Bool,
    }
}

diesel::table! {
    /// Single-use invitations sent to one address.
    invites (id) {
        id -> BigInt,
        circle_id -> BigInt,
        email -> Text,
        token_hash -> Text,
        /// The person who sent the invite.
        invited_by -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Emailed sign-in and join-confirmation links.
    sign_in_tokens (id) {
        id -> BigInt,
        email -> Text,
        /// NULL while the address has no account.
        person_id -> Nullable<BigInt>,
        token_hash -> Text,
        /// `sign_in` or `join`.
        purpose -> Text,
        payload -> Nullable<Text>,
        redirect_to -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Signed-in browsers, keyed by the SHA-256 hex of the cookie's session id.
    sessions (id_hash) {
        id_hash -> Text,
        person_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    /// Unique on `(circle_id, slot)` and on `(circle_id, number)`.
    rounds (id) {
        id -> BigInt,
        circle_id -> BigInt,
        number -> Integer,
        /// Local date-time of the intended occurrence in the circle's zone,
        /// e.g. `2027-03-14T02:30`, so a DST gap or fold still yields one round.
        slot -> Text,
        prompt_id -> Text,
        /// Copied from the deck so that later deck edits leave history alone.
        prompt_question -> Text,
        prompt_follow_up -> Nullable<Text>,
        opened_at -> Timestamp,
        reminder_at -> Timestamp,
        closes_at -> Timestamp,
        reminded_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        /// Why it opened over a minute after its slot: `busy` or `downtime`.
        late_because -> Nullable<Text>,
    }
}

diesel::table! {
    /// The key each round email carries: its round link, which also names
    /// its one-click choices and its unsubscribe link.
    round_links (id) {
        id -> BigInt,
        round_id -> BigInt,
        membership_id -> BigInt,
        token_hash -> Text,
        /// The key of the email's Reply-To, stored as `token_hash` is.
        reply_token_hash -> Nullable<Text>,
    }
}

diesel::table! {
    /// A new address waiting to confirm itself (see `people::address`).
    address_changes (id) {
        id -> BigInt,
        person_id -> BigInt,
        email -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Mail that came back, once per Message-ID, and what became of it.
    inbound_messages (id) {
        id -> BigInt,
        message_id -> Text,
        membership_id -> Nullable<BigInt>,
        round_id -> Nullable<BigInt>,
        outcome -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    /// The first use of each choice made through a round link.
    round_link_uses (round_link_id, choice) {
        round_link_id -> BigInt,
        choice -> Text,
        used_at -> Timestamp,
    }
}

diesel::table! {
    /// Unique on `(round_id, membership_id)`.
    check_ins (id) {
        id -> BigInt,
        round_id -> BigInt,
        membership_id -> BigInt,
        reflection -> Text,
        late -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// Read by the circle's members; false: by its author alone.
        shared -> Bool,
    }
}

diesel::table! {
    /// "Skip this round". Unique on `(round_id, membership_id)`.
    round_skips (id) {
        id -> BigInt,
        round_id -> BigInt,
        membership_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Days a member is away, both ends inclusive.
    away_periods (id) {
        id -> BigInt,
        membership_id -> BigInt,
        starts_on -> Date,
        ends_on -> Date,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Unique on `(round_id, membership_id, position)`.
    commitments (id) {
        id -> BigInt,
        membership_id -> BigInt,
        /// The round in which the commitment was made.
        round_id -> BigInt,
        /// 1 to 3 (checked by the database).
        position -> Integer,
        body -> Text,
        /// `open`, `done`, `partly`, `not_yet` or `released`.
        status -> Text,
        help_wanted -> Bool,
        created_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Unique on `(commitment_id, round_id)`.
    follow_throughs (id) {
        id -> BigInt,
        commitment_id -> BigInt,
        /// The round in which the outcome was reported.
        round_id -> BigInt,
        /// `done`, `partly`, `not_yet` or `released`.
        outcome -> Text,
        note -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    /// One-click links in emails, such as a follow-through choice.
    action_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        kind -> Text,
        membership_id -> BigInt,
        round_id -> Nullable<BigInt>,
        commitment_id -> Nullable<BigInt>,
        choice -> Nullable<Text>,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Shoulder-up pairs: the giver encourages the receiver this round.
    /// Unique on `(round_id, giver_membership_id)`.
    pairings (id) {
        id -> BigInt,
        round_id -> BigInt,
        giver_membership_id -> BigInt,
        receiver_membership_id -> BigInt,
    }
}

diesel::table! {
    support_messages (id) {
        id -> BigInt,
        commitment_id -> BigInt,
        author_membership_id -> BigInt,
        round_id -> Nullable<BigInt>,
        body -> Text,
        created_at -> Timestamp,
        /// The commitment owner's one answer.
        answer -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// A word from one member to another during a round, and the
    /// recipient's one answer.
    peer_notes (id) {
        id -> BigInt,
        round_id -> BigInt,
        author_membership_id -> BigInt,
        recipient_membership_id -> BigInt,
        body -> Text,
        created_at -> Timestamp,
        answer -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// A circle's own prompts, beside the operator's decks.
    circle_prompts (id) {
        id -> BigInt,
        circle_id -> BigInt,
        prompt_key -> Text,
        theme -> Text,
        question -> Text,
        follow_up -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// When a circle last used each prompt; once the deck is used up, the
    /// least recently used comes round again.
    prompt_usage (id) {
        id -> BigInt,
        circle_id -> BigInt,
        prompt_id -> Text,
        round_id -> BigInt,
        used_at -> Timestamp,
    }
}

diesel::table! {
    /// The email outbox. Unique on `(round_id, membership_id, kind)`; mail
    /// outside a round has NULLs there, which never collide.
    deliveries (id) {
        id -> BigInt,
        round_id -> Nullable<BigInt>,
        membership_id -> Nullable<BigInt>,
        kind -> Text,
        to_address -> Text,
        /// Only in rows queued before `context_json` existed, which are
        /// sent as they were rendered.
        subject -> Nullable<Text>,
        text_body -> Nullable<Text>,
        html_body -> Nullable<Text>,
        /// The recipient's display name and extra headers (e.g.
        /// `List-Unsubscribe`), as JSON.
        headers_json -> Nullable<Text>,
        /// `pending`, `sending`, `sent`, `failed` or `suppressed`.
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claim_token -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        message_id -> Text,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        /// The template context as JSON, rendered with the templates of
        /// `kind` when the email is sent.
        context_json -> Nullable<Text>,
    }
}

diesel::table! {
    /// Addresses we no longer send to (hard bounces, complaints).
    suppressed_addresses (id) {
        id -> BigInt,
        email -> Text,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Request counters, unique on `(bucket, window_start)`, shared by every
    /// instance that uses the database.
    rate_limits (id) {
        id -> BigInt,
        bucket -> Text,
        window_start -> Timestamp,
        count -> Integer,
    }
}

diesel::joinable!(memberships -> circles (circle_id));
diesel::joinable!(memberships -> people (person_id));
diesel::joinable!(invites -> circles (circle_id));
diesel::joinable!(invites -> people (invited_by));
diesel::joinable!(sign_in_tokens -> people (person_id));
diesel::joinable!(sessions -> people (person_id));
diesel::joinable!(rounds -> circles (circle_id));
diesel::joinable!(round_links -> rounds (round_id));
diesel::joinable!(round_links -> memberships (membership_id));
diesel::joinable!(round_link_uses -> round_links (round_link_id));
diesel::joinable!(check_ins -> rounds (round_id));
diesel::joinable!(check_ins -> memberships (membership_id));
diesel::joinable!(round_skips -> rounds (round_id));
diesel::joinable!(round_skips -> memberships (membership_id));
diesel::joinable!(away_periods -> memberships (membership_id));
diesel::joinable!(commitments -> memberships (membership_id));
diesel::joinable!(commitments -> rounds (round_id));
diesel::joinable!(follow_throughs -> commitments (commitment_id));
diesel::joinable!(follow_throughs -> rounds (round_id));
diesel::joinable!(action_tokens -> memberships (membership_id));
diesel::joinable!(action_tokens -> rounds (round_id));
diesel::joinable!(action_tokens -> commitments (commitment_id));
diesel::table! {
    /// Stretches of time a scheduler was running: passes, each at most a
    /// few intervals after the one before.
    scheduler_uptime (id) {
        id -> BigInt,
        started_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    /// A run of a circle's slots that got no round, and why: `downtime` or
    /// `superseded`.
    skipped_rounds (id) {
        id -> BigInt,
        circle_id -> BigInt,
        first_slot -> Text,
        last_slot -> Text,
        count -> Integer,
        because -> Text,
        recorded_at -> Timestamp,
    }
}

// pairings has two foreign keys to memberships (giver and receiver), so it gets
// no joinable! to memberships: join it with an explicit `.on(...)` instead.
diesel::joinable!(pairings -> rounds (round_id));
diesel::joinable!(skipped_rounds -> circles (circle_id));
diesel::joinable!(support_messages -> commitments (commitment_id));
diesel::joinable!(support_messages -> memberships (author_membership_id));
diesel::joinable!(support_messages -> rounds (round_id));
// peer_notes has two foreign keys to memberships: join with `.on(...)`.
diesel::joinable!(peer_notes -> rounds (round_id));
diesel::joinable!(circle_prompts -> circles (circle_id));
diesel::joinable!(prompt_usage -> circles (circle_id));
diesel::joinable!(prompt_usage -> rounds (round_id));
diesel::joinable!(deliveries -> rounds (round_id));
diesel::joinable!(deliveries -> memberships (membership_id));
diesel::joinable!(address_changes -> people (person_id));

diesel::allow_tables_to_appear_in_same_query!(
    people,
    address_changes,
    circles,
    memberships,
    invites,
    sign_in_tokens,
    sessions,
    rounds,
    round_links,
    round_link_uses,
    check_ins,
    inbound_messages,
    peer_notes,
    round_skips,
    away_periods,
    commitments,
    follow_throughs,
    action_tokens,
    pairings,
    support_messages,
    circle_prompts,
    prompt_usage,
    deliveries,
    suppressed_addresses,
    rate_limits,
    scheduler_uptime,
    skipped_rounds,
);
