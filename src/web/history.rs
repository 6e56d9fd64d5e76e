//! Follow-through history (the circle's, and each member's) and the
//! facilitator's circle health page.
//!
//! History answers to every active member of the circle; health only to its
//! facilitators. Anyone else, and any id that is not this circle's, gets the
//! same 404 as a circle that does not exist.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::session::SignedInPerson;
use super::views;
use super::views::circles::FailureLine;
use super::views::health::{CarriedLine, HealthPage, QuietLine};
use super::views::history::{CircleHistoryPage, MemberHistoryPage};
use crate::app::AppState;
use crate::circles::health::{self, CARRIED_ROUNDS, QUIET_ROUNDS, UNHEARD_ROUNDS};
use crate::circles::store;
use crate::db::DbError;
use crate::error::AppError;
use crate::rounds::history;

/// Ids in paths are numbers; anything else names nothing here: 404, not 400.
fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

pub async fn circle_history(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let person_id = person.person_id;
    let (circle, history) = state
        .db
        .run(move |conn| {
            let Some((circle, _)) = store::find_for_member(conn, circle_id, person_id)? else {
                return Ok(None);
            };
            let history = history::for_circle(conn, circle_id)?;
            Ok::<_, DbError>(Some((circle, history)))
        })
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(views::history::circle_history(&CircleHistoryPage {
        viewer: &person.display_name,
        circle_id,
        circle_name: &circle.name,
        rounds: &history.rounds,
        total: &history.total,
    })
    .into_response())
}

pub async fn member_history(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((id, membership)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let membership_id = parse_id(&membership)?;
    let person_id = person.person_id;
    let (circle, viewer, member) = state
        .db
        .run(move |conn| {
            let Some((circle, viewer)) = store::find_for_member(conn, circle_id, person_id)? else {
                return Ok(None);
            };
            let Some(member) = history::for_member(conn, circle_id, membership_id)? else {
                return Ok(None);
            };
            Ok::<_, DbError>(Some((circle, viewer, member)))
        })
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(views::history::member_history(&MemberHistoryPage {
        viewer: &person.display_name,
        circle_id,
        circle_name: &circle.name,
        member_name: &member.name,
        is_viewer: viewer.id == member.membership_id,
        rounds: &member.history.rounds,
        total: &member.history.total,
        commitments: &member.commitments,
    })
    .into_response())
}

pub async fn health(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let person_id = person.person_id;
    let (circle, health) = state
        .db
        .run(move |conn| {
            match store::find_for_member(conn, circle_id, person_id)? {
                Some((circle, membership)) if membership.is_facilitator() => {
                    let health = health::for_circle(conn, circle_id)?;
                    Ok::<_, DbError>(Some((circle, health)))
                }
                // Members see the same 404 as strangers: the page is private.
                _ => Ok(None),
            }
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let page = HealthPage {
        viewer: &person.display_name,
        circle_id,
        circle_name: &circle.name,
        latest_round: health.latest_round,
        carried_rounds: CARRIED_ROUNDS,
        quiet_rounds: QUIET_ROUNDS,
        carried: health
            .carried
            .into_iter()
            .map(|c| CarriedLine {
                membership_id: c.membership_id,
                member: c.member_name,
                body: c.body,
                made_in_round: c.made_in_round,
                rounds_carried: c.rounds_carried,
                help_wanted: c.help_wanted,
            })
            .collect(),
        quiet: health
            .quiet
            .into_iter()
            .map(|q| QuietLine {
                membership_id: q.membership_id,
                name: q.name,
            })
            .collect(),
        unheard_rounds: UNHEARD_ROUNDS,
        unheard: health
            .unheard
            .into_iter()
            .map(|q| QuietLine {
                membership_id: q.membership_id,
                name: q.name,
            })
            .collect(),
        failures: health
            .failures
            .into_iter()
            .map(|failure| FailureLine {
                member: failure.member_name,
                kind: failure.kind.replace('_', "-"),
                what: if failure.status == "suppressed" {
                    "not sent: the address refused earlier mail".to_string()
                } else {
                    failure.reason.unwrap_or_else(|| "refused".into())
                },
                when: failure.at.format("%-d %b %Y %H:%M UTC").to_string(),
            })
            .collect(),
    };
    Ok(views::health::health(&page).into_response())
}
