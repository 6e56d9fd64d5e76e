//! Shoulder-up pairs: each round, every member who gets the check-in is
//! asked to encourage one peer.
//!
//! The rule is a rotation. Members are put in a fixed order (by membership
//! id) and round `n` pairs each with the one `k` places further on, wrapping
//! round, where `k` runs through 1, 2, …, size − 1 and starts again. So
//! nobody is paired with themselves, everyone gives and receives exactly
//! once a round whatever the size (odd sizes too), and over size − 1 rounds
//! each member is asked to encourage every other. Away and muted members
//! are not in the rotation that round; a member alone gets no pair.

use diesel::prelude::*;

use crate::db::schema::{memberships, pairings, people};
use crate::db::{DbConnection, DbError};

/// (giver, receiver) pairs for round `number` among `members`, who must be
/// distinct; their order does not matter.
pub fn rotate(members: &[i64], number: i32) -> Vec<(i64, i64)> {
    let mut order = members.to_vec();
    order.sort_unstable();
    order.dedup();
    let size = order.len();
    if size < 2 {
        return Vec::new();
    }
    let rounds_in_cycle = size - 1;
    let step = usize::try_from(number.max(1) - 1).unwrap_or(0) % rounds_in_cycle + 1;
    order
        .iter()
        .enumerate()
        .map(|(index, &giver)| (giver, order[(index + step) % size]))
        .collect()
}

/// Whom `membership_id` is asked to shoulder up in a round: (membership id,
/// name).
pub fn partner_of(
    conn: &mut DbConnection,
    round_id: i64,
    membership_id: i64,
) -> Result<Option<(i64, String)>, DbError> {
    Ok(pairings::table
        .inner_join(
            memberships::table
                .on(memberships::id.eq(pairings::receiver_membership_id))
                .inner_join(people::table),
        )
        .filter(pairings::round_id.eq(round_id))
        .filter(pairings::giver_membership_id.eq(membership_id))
        .select((memberships::id, people::display_name))
        .first(conn)
        .optional()?)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn everyone_gives_and_receives_once_and_never_to_themselves() {
        for size in 2..=12 {
            let members: Vec<i64> = (1..=size).map(|i| i * 7).collect();
            for number in 1..=30 {
                let pairs = rotate(&members, number);
                assert_eq!(pairs.len(), members.len());
                let givers: BTreeSet<i64> = pairs.iter().map(|p| p.0).collect();
                let receivers: BTreeSet<i64> = pairs.iter().map(|p| p.1).collect();
                let everyone: BTreeSet<i64> = members.iter().copied().collect();
                assert_eq!(givers, everyone, "size {size}, round {number}");
                assert_eq!(receivers, everyone, "size {size}, round {number}");
                assert!(pairs.iter().all(|(giver, receiver)| giver != receiver));
            }
        }
    }

    #[test]
    fn over_a_cycle_each_member_encourages_every_other() {
        for size in 3..=12 {
            let members: Vec<i64> = (1..=size).collect();
            let mut met: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
            for number in 1..size as i32 {
                for (giver, receiver) in rotate(&members, number) {
                    met.entry(giver).or_default().insert(receiver);
                }
            }
            for member in &members {
                assert_eq!(met[member].len(), members.len() - 1, "size {size}");
            }
        }
    }

    #[test]
    fn consecutive_rounds_change_partners_when_there_is_a_choice() {
        let members = [3, 1, 2, 5, 4];
        for number in 1..20 {
            let this = rotate(&members, number);
            let next = rotate(&members, number + 1);
            assert!(
                this.iter().zip(&next).all(|(a, b)| a.1 != b.1),
                "round {number}"
            );
        }
    }

    #[test]
    fn one_member_has_nobody_and_two_encourage_each_other() {
        assert!(rotate(&[9], 4).is_empty());
        assert!(rotate(&[], 1).is_empty());
        assert_eq!(rotate(&[2, 1], 3), [(1, 2), (2, 1)]);
    }
}
