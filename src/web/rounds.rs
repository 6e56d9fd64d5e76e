//! The round page: the shared prompt, and when the round closes. Members
//! only, like everything under a circle.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;

use super::session::SignedInPerson;
use super::views;
use crate::app::AppState;
use crate::circles::store;
use crate::error::AppError;
use crate::rounds;

pub async fn show(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, number)): Path<(i64, i32)>,
) -> Result<Response, AppError> {
    let person_id = person.person_id;
    let found = state
        .db
        .run(move |conn| {
            let Some((circle, _)) = store::find_for_member(conn, circle_id, person_id)? else {
                return Ok(None);
            };
            let round = rounds::find_by_number(conn, circle_id, number)?;
            Ok::<_, crate::db::DbError>(round.map(|round| (circle, round)))
        })
        .await?;
    let Some((circle, round)) = found else {
        return Err(AppError::NotFound);
    };
    let zone = circle.time_zone.parse::<Tz>().unwrap_or(chrono_tz::UTC);
    let local = |at: chrono::NaiveDateTime| {
        at.and_utc()
            .with_timezone(&zone)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string()
    };
    let page = views::rounds::RoundPage {
        viewer: &person.display_name,
        circle_id,
        circle_name: &circle.name,
        number: round.number,
        question: &round.question,
        follow_up: round.follow_up.as_deref(),
        opened: local(round.opened_at),
        closes: local(round.closes_at),
        closed: round.closed_at.is_some(),
    };
    Ok(views::rounds::round(&page).into_response())
}
