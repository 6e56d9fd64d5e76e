//! Handlers for starting, showing and running a circle. Every circle route
//! answers 404 to anyone who is not an active member, so ids reveal nothing.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::form::FormData;
use super::limits::{Limited, with_retry_after};
use super::session::{SessionToken, SignInFirst, SignedInPerson};
use super::views;
use super::views::circles::{
    CircleLine, CirclePage, Confirmation, FailureLine, FormPage, FormPurpose, HourProblem,
    MemberLine, OwnHour, RoundLine, RoundNow,
};
use crate::app::AppState;
use crate::auth::session::{Found, SignedIn};
use crate::calendar;
use crate::circles::settings::{FieldErrors, Settings, SettingsForm};
use crate::circles::store::{
    self, Circle, CircleStatus, Departure, Membership, Started, UpdateOutcome,
};
use crate::circles::unsubscribe;
use crate::clock::{local_text, time_for, zone_or_utc};
use crate::db::write_transaction;
use crate::error::AppError;
use crate::mail::outbox;
use crate::rounds;
use crate::rounds::own_hour;

const UPCOMING_SHOWN: usize = 3;
const RECENT_ROUNDS_SHOWN: i64 = 10;
const FAILURES_SHOWN: i64 = 20;

fn settings_form_from(form: &FormData) -> SettingsForm {
    SettingsForm {
        name: form.get("name").into(),
        purpose: form.get("purpose").into(),
        agreements: form.get("agreements").into(),
        cadence_kind: form.get("cadence_kind").into(),
        days: form.all("day").into_iter().map(str::to_string).collect(),
        time: form.get("time").into(),
        every_weeks: form.get("every_weeks").into(),
        month_day: form.get("month_day").into(),
        cron: form.get("cron").into(),
        time_zone: form.get("time_zone").into(),
        round_hours: form.get("round_hours").into(),
        size_cap: form.get("size_cap").into(),
    }
}

fn upcoming(settings: &Settings, now: DateTime<Utc>) -> Vec<String> {
    settings
        .cadence
        .upcoming(settings.time_zone, now, UPCOMING_SHOWN)
        .into_iter()
        .map(|occurrence| local_text(occurrence.at, settings.time_zone))
        .collect()
}

/// The day a new circle's "every N weeks" counts from: today where it meets.
fn anchor_for(form: &SettingsForm, now: DateTime<Utc>) -> chrono::NaiveDate {
    let zone = zone_or_utc(&form.time_zone);
    now.with_timezone(&zone).date_naive()
}

/// The circle, if the signed-in person is an active member of it.
async fn circle_for(
    state: &AppState,
    person: &SignedIn,
    circle_id: i64,
) -> Result<(Circle, Membership), AppError> {
    let person_id = person.person_id;
    state
        .db
        .run(move |conn| store::find_for_member(conn, circle_id, person_id))
        .await?
        .ok_or(AppError::NotFound)
}

/// Like [`circle_for`], for facilitators only; others get the same 404.
async fn facilitated(
    state: &AppState,
    person: &SignedIn,
    circle_id: i64,
) -> Result<(Circle, Membership), AppError> {
    let (circle, membership) = circle_for(state, person, circle_id).await?;
    if membership.is_facilitator() {
        Ok((circle, membership))
    } else {
        Err(AppError::NotFound)
    }
}

pub async fn home(state: &AppState, person: &SignedIn) -> Result<Response, AppError> {
    let person_id = person.person_id;
    let (rows, archived) = state
        .db
        .run(move |conn| {
            let rows = store::list_for_person(conn, person_id)?;
            let archived = store::archived_facilitated_by(conn, person_id)?;
            Ok::<_, AppError>((rows, archived))
        })
        .await?;
    let lines: Vec<CircleLine> = rows
        .into_iter()
        .map(|(circle, role)| {
            let next_round = match (circle.next_round_at, circle.time_zone.parse::<Tz>()) {
                (Some(at), Ok(zone)) => Some(time_for(at.and_utc(), zone, person.time_zone)),
                _ => None,
            };
            CircleLine {
                id: circle.id,
                name: circle.name.clone(),
                facilitator: role == store::ROLE_FACILITATOR,
                status: circle.status.clone(),
                next_round,
            }
        })
        .collect();
    Ok(views::circles::my_circles(&person.display_name, &lines, &archived).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
) -> Response {
    // A circle starts in its facilitator's zone; without one, in the
    // configured default, which the browser's own zone may replace.
    let propose_browser_zone = person.time_zone.is_none();
    let form = SettingsForm::new(
        person
            .time_zone
            .map_or(state.config.circles.default_time_zone.as_str(), |zone| {
                zone.name()
            }),
    );
    views::circles::settings_form(&FormPage {
        viewer: &person.display_name,
        purpose: FormPurpose::Start,
        form: &form,
        errors: &FieldErrors::new(),
        preview: None,
        propose_browser_zone,
    })
    .into_response()
}

pub async fn create(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    data: FormData,
) -> Result<Response, AppError> {
    let form = settings_form_from(&data);
    let now = state.clock.now();
    let parsed = Settings::parse(&form, anchor_for(&form, now));
    let show = |errors: &FieldErrors, preview: Option<Vec<String>>, status: StatusCode| {
        (
            status,
            views::circles::settings_form(&FormPage {
                viewer: &person.display_name,
                purpose: FormPurpose::Start,
                form: &form,
                errors,
                preview,
                propose_browser_zone: false,
            }),
        )
            .into_response()
    };
    let settings = match parsed {
        Err(errors) => return Ok(show(&errors, None, StatusCode::UNPROCESSABLE_ENTITY)),
        Ok(settings) if data.get("intent") == "preview" => {
            return Ok(show(
                &FieldErrors::new(),
                Some(upcoming(&settings, now)),
                StatusCode::OK,
            ));
        }
        Ok(settings) => settings,
    };
    let facilitator = person.person_id;
    let per_day = state.config.limits.circles_per_person_per_day;
    let started = state
        .db
        .run(move |conn| store::start(conn, facilitator, &settings, per_day, now))
        .await?;
    let circle_id = match started {
        Started::Circle(id) => id,
        Started::LimitReached { retry_after } => {
            state
                .metrics
                .record_limit_reached(Limited::CirclesPerPerson);
            let mut errors = FieldErrors::new();
            errors.insert(
                views::circles::LIMIT_REACHED,
                format!(
                    "You have started {per_day} circles today, as many as one person may. \
                     Please start this one tomorrow; what you wrote is kept below."
                ),
            );
            let wait = retry_after.to_std().unwrap_or_default();
            let page = show(&errors, None, StatusCode::TOO_MANY_REQUESTS);
            return Ok(with_retry_after(page, wait));
        }
    };
    tracing::info!(circle.id = circle_id, "circle started");
    Ok(Redirect::to(&format!("/circles/{circle_id}")).into_response())
}

/// Everything the circle page shows, read with the session in one go.
struct CircleData {
    person: SignedIn,
    /// The session's expiry is due to move on, which the reads leave to a
    /// write of its own.
    due_refresh: bool,
    circle: Circle,
    membership: Membership,
    members: Vec<store::Member>,
    recent_rounds: Vec<rounds::RoundSummary>,
    schedule_notes: rounds::ScheduleNotes,
    standing: Option<rounds::standing::Standing>,
    failures: Vec<outbox::FailedDelivery>,
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    /// What was just done here, for the notice that says so.
    done: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    session: SessionToken,
    Path(circle_id): Path<i64>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, SignInFirst> {
    let notice = query.done.as_deref().and_then(|done| match done {
        "paused" => Some("The circle is paused: no round opens until you resume it."),
        "active" => Some("The circle is running: its rounds open again on its rhythm."),
        "archived" => Some(
            "The circle is archived. You find it under \"Archived circles\" on your front page, where you can unarchive it.",
        ),
        "facilitator" => Some("They are a facilitator of the circle now, as you are."),
        "removed" => Some("They are no longer in the circle. You can invite them again."),
        "join-notices-on" => Some("You will get a short email whenever someone joins."),
        "join-notices-off" => Some("You will no longer be emailed when someone joins."),
        _ => None,
    });
    circle_page(&state, session, circle_id, None, notice).await
}

/// The circle page; `hour` is a refused choice of when the check-in email
/// arrives, shown again in its form with why.
async fn circle_page(
    state: &AppState,
    session: SessionToken,
    circle_id: i64,
    hour: Option<HourProblem<'_>>,
    notice: Option<&str>,
) -> Result<Response, SignInFirst> {
    if session.is_absent() {
        return Err(session.sign_in_first());
    }
    let now = state.clock.now().naive_utc();
    let signed_out = session.clone();
    let loaded = state
        .db
        .read(move |conn| {
            let Some(Found {
                person,
                due_refresh,
            }) = session.look_up(conn, now)?
            else {
                return Ok(None);
            };
            let (circle, membership) = store::find_for_member(conn, circle_id, person.person_id)?
                .ok_or(AppError::NotFound)?;
            let members = store::list_members(conn, circle_id)?;
            let recent_rounds = rounds::list_for_circle(conn, circle_id, RECENT_ROUNDS_SHOWN)?;
            let schedule_notes = rounds::schedule_notes(conn, circle_id)?;
            let standing = rounds::standing::of_circle(conn, circle_id, &members)?;
            // Delivery problems are the facilitator's to follow up, not everyone's.
            let failures = if membership.is_facilitator() {
                outbox::list_failures_for_circle(conn, circle_id, FAILURES_SHOWN)?
            } else {
                Vec::new()
            };
            Ok::<_, AppError>(Some(CircleData {
                person,
                due_refresh,
                circle,
                membership,
                members,
                recent_rounds,
                schedule_notes,
                standing,
                failures,
            }))
        })
        .await?;
    let Some(CircleData {
        person,
        due_refresh,
        circle,
        membership,
        members,
        recent_rounds,
        schedule_notes,
        standing,
        failures,
    }) = loaded
    else {
        return Err(signed_out.sign_in_first());
    };
    if due_refresh {
        signed_out
            .refresh(&state.db, now)
            .await
            .map_err(AppError::from)?;
    }
    let settings = circle.settings();
    let (schedule, next_round) = match &settings {
        Ok(settings) => (
            settings.cadence.describe(),
            circle.next_round_at.map(|at| {
                (
                    time_for(at.and_utc(), settings.time_zone, person.time_zone),
                    at.and_utc().format("%A %-d %B %Y, %H:%M UTC").to_string(),
                    at.and_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            }),
        ),
        Err(problem) => (format!("The schedule cannot be read: {problem}"), None),
    };
    let page = CirclePage {
        viewer: &person.display_name,
        circle_id,
        name: &circle.name,
        purpose: &circle.purpose,
        agreements: &circle.agreements,
        status: &circle.status,
        paused_reason: circle.paused_reason.as_deref(),
        schedule,
        time_zone: &circle.time_zone,
        next_round,
        reader_has_zone: person.time_zone.is_some(),
        members: members
            .iter()
            .map(|m| MemberLine {
                membership_id: m.membership_id,
                name: m.display_name.clone(),
                facilitator: m.role == store::ROLE_FACILITATOR,
                is_viewer: m.membership_id == membership.id,
            })
            .collect(),
        size_cap: circle.size_cap,
        viewer_is_facilitator: membership.is_facilitator(),
        muted: membership.muted,
        join_notices: membership.join_notices,
        rounds: recent_rounds
            .into_iter()
            .map(|round| RoundLine {
                number: round.number,
                question: round.question,
                open: round.open,
            })
            .collect(),
        round_now: standing.map(|standing| RoundNow {
            closes: time_for(
                standing.closes_at.and_utc(),
                zone_or_utc(&circle.time_zone),
                person.time_zone,
            ),
            viewer: standing.answer_of(membership.id),
            standing,
        }),
        schedule_notes: views::circles::schedule_notes(
            &schedule_notes,
            zone_or_utc(&circle.time_zone),
        ),
        failures: failures
            .iter()
            .map(|failure| FailureLine {
                member: failure.member_name.clone(),
                kind: failure.kind.replace('_', "-"),
                what: if failure.status == "suppressed" {
                    "not sent: the address refused earlier mail".to_string()
                } else {
                    failure.reason.clone().unwrap_or_else(|| "refused".into())
                },
                when: failure.at.format("%-d %b %Y %H:%M UTC").to_string(),
            })
            .collect(),
        notice,
        own_hour: OwnHour {
            kept: membership.check_in_at.as_deref(),
            zone: person.time_zone.map(|zone| zone.name()),
            problem: hour,
        },
    };
    let status = if page.own_hour.problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, views::circles::circle(&page)).into_response())
}

/// Chooses when the member's check-in email arrives: when the round opens,
/// or at an hour of their own. An email already waiting moves to the new
/// time; one sent stays sent.
pub async fn set_check_in_hour(
    State(state): State<AppState>,
    session: SessionToken,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, SignInFirst> {
    let typed = data.get("check_in_at").to_string();
    let hour = match data.get("when") {
        "opening" => Ok(None),
        "hour" => own_hour::parse(&typed)
            .map(Some)
            .map_err(|error| (views::circles::HOUR, error)),
        _ => Err((
            views::circles::HOUR_CHOICE,
            "Choose when the round opens, or an hour of your own.",
        )),
    };
    let hour = match hour {
        Ok(hour) => hour,
        Err((field, error)) => {
            let problem = HourProblem {
                typed: &typed,
                error,
                field,
            };
            return circle_page(&state, session, circle_id, Some(problem), None).await;
        }
    };
    let now = state.clock.now();
    let person_id = person.person_id;
    let own_zone = person.time_zone;
    let moved = state
        .db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                let Some((circle, membership)) =
                    store::find_for_member(conn, circle_id, person_id)?
                else {
                    return Ok(None);
                };
                own_hour::set(conn, membership.id, hour)?;
                let zone = own_zone.unwrap_or_else(|| zone_or_utc(&circle.time_zone));
                own_hour::reschedule_waiting(conn, membership.id, hour, zone, now).map(Some)
            })
        })
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    tracing::info!(circle.id = circle_id, moved, "check-in hour changed");
    if moved > 0 {
        state.wake_jobs();
    }
    Ok(Redirect::to(&format!("/circles/{circle_id}#email")).into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let settings = circle.settings().map_err(AppError::Internal)?;
    let form = SettingsForm::from_settings(&settings);
    Ok(views::circles::settings_form(&FormPage {
        viewer: &person.display_name,
        purpose: FormPurpose::Edit { circle_id },
        form: &form,
        errors: &FieldErrors::new(),
        preview: Some(upcoming(&settings, state.clock.now())),
        propose_browser_zone: false,
    })
    .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let form = settings_form_from(&data);
    let now = state.clock.now();
    // "Every N weeks" keeps counting from the circle's first day.
    let anchor = circle
        .created_at
        .and_utc()
        .with_timezone(&zone_or_utc(&form.time_zone))
        .date_naive();
    let show = |errors: &FieldErrors, preview: Option<Vec<String>>, status: StatusCode| {
        (
            status,
            views::circles::settings_form(&FormPage {
                viewer: &person.display_name,
                purpose: FormPurpose::Edit { circle_id },
                form: &form,
                errors,
                preview,
                propose_browser_zone: false,
            }),
        )
            .into_response()
    };
    let settings = match Settings::parse(&form, anchor) {
        Err(errors) => return Ok(show(&errors, None, StatusCode::UNPROCESSABLE_ENTITY)),
        Ok(settings) if data.get("intent") == "preview" => {
            return Ok(show(
                &FieldErrors::new(),
                Some(upcoming(&settings, now)),
                StatusCode::OK,
            ));
        }
        Ok(settings) => settings,
    };
    let outcome = state
        .db
        .run(move |conn| store::update(conn, circle_id, &settings, now))
        .await?;
    match outcome {
        UpdateOutcome::Updated => {
            Ok(Redirect::to(&format!("/circles/{circle_id}")).into_response())
        }
        UpdateOutcome::CapBelowMembers { members } => {
            let mut errors = FieldErrors::new();
            errors.insert(
                "size_cap",
                format!("The circle already has {members} members; the room cannot be smaller than that."),
            );
            Ok(show(&errors, None, StatusCode::UNPROCESSABLE_ENTITY))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    action: Option<String>,
}

/// The circle status an `action` asks for.
fn status_for(action: &str) -> Option<CircleStatus> {
    match action {
        "pause" => Some(CircleStatus::Paused),
        "resume" => Some(CircleStatus::Active),
        "archive" => Some(CircleStatus::Archived),
        _ => None,
    }
}

/// Asks before pausing, resuming or archiving; changes nothing.
pub async fn status_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let action = query.action.unwrap_or_default();
    match status_for(&action) {
        Some(status) => Ok(status_confirmation(&person, &circle, status).into_response()),
        None => Ok(no_such_status(&person, circle_id)),
    }
}

fn no_such_status(person: &SignedIn, circle_id: i64) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        views::circles::refused(
            &person.display_name,
            "Nothing changed",
            "Choose pause, resume or archive.",
            &format!("/circles/{circle_id}"),
        ),
    )
        .into_response()
}

fn status_confirmation(person: &SignedIn, circle: &Circle, status: CircleStatus) -> maud::Markup {
    let name = &circle.name;
    let (title, consequences, button, danger) = match status {
        CircleStatus::Paused => (
            format!("Pause {name}?"),
            vec![
                "No round opens while the circle is paused, and nobody gets its emails. An open round stays open until it closes.".to_string(),
                "Members still see the circle and its history. Resume it whenever you like: rounds start again from then, and the times missed meanwhile are not made up.".to_string(),
            ],
            "Pause the circle",
            false,
        ),
        CircleStatus::Archived => (
            format!("Archive {name}?"),
            vec![
                "The circle stops: no more rounds or emails for anyone in it, and it leaves everyone's list of circles.".to_string(),
                "Nothing is deleted. Its facilitators find it under \"Archived circles\" on their front page and can unarchive it; rounds then start again from that day, without making up the ones missed.".to_string(),
            ],
            "Archive the circle",
            true,
        ),
        CircleStatus::Active => (
            if circle.status == CircleStatus::Archived.as_str() {
                format!("Unarchive {name}?")
            } else {
                format!("Resume {name}?")
            },
            vec![
                "Rounds open again on the circle's rhythm from now on, with their emails to every member; the times missed are not made up.".to_string(),
            ],
            if circle.status == CircleStatus::Archived.as_str() {
                "Unarchive the circle"
            } else {
                "Resume the circle"
            },
            false,
        ),
    };
    let action = format!("/circles/{}/status", circle.id);
    let back = format!("/circles/{}", circle.id);
    views::circles::confirm(
        &person.display_name,
        &Confirmation {
            title: &title,
            consequences: &consequences,
            action: &action,
            fields: &[("action", status_action(status))],
            button,
            danger,
            back: &back,
        },
    )
}

fn status_action(status: CircleStatus) -> &'static str {
    match status {
        CircleStatus::Paused => "pause",
        CircleStatus::Active => "resume",
        CircleStatus::Archived => "archive",
    }
}

/// Pauses, resumes or archives once confirmed; then back to the circle,
/// so a reload repeats nothing.
pub async fn change_status(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let Some(status) = status_for(data.get("action")) else {
        return Ok(no_such_status(&person, circle_id));
    };
    if !confirmed(&data) {
        return Ok(status_confirmation(&person, &circle, status).into_response());
    }
    let now = state.clock.now();
    state
        .db
        .run(move |conn| store::set_status(conn, circle_id, status, now))
        .await?;
    tracing::info!(
        circle.id = circle_id,
        status = status.as_str(),
        "circle status changed"
    );
    Ok(Redirect::to(&format!("/circles/{circle_id}?done={}", status.as_str())).into_response())
}

/// Whether a form says its act was confirmed on its confirmation page.
fn confirmed(data: &FormData) -> bool {
    data.get("confirm") == "yes"
}

/// Mutes or unmutes the viewer's own email from this circle.
pub async fn change_mail(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, AppError> {
    let muted = match data.get("action") {
        "mute" => true,
        "unmute" => false,
        _ => {
            circle_for(&state, &person, circle_id).await?;
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                views::circles::refused(
                    &person.display_name,
                    "Nothing changed",
                    "Choose to mute or to turn email back on.",
                    &format!("/circles/{circle_id}"),
                ),
            )
                .into_response());
        }
    };
    let person_id = person.person_id;
    let member = state
        .db
        .run(move |conn| unsubscribe::set_muted(conn, circle_id, person_id, muted))
        .await?;
    if !member {
        return Err(AppError::NotFound);
    }
    tracing::info!(circle.id = circle_id, muted, "circle mail setting changed");
    Ok(Redirect::to(&format!("/circles/{circle_id}")).into_response())
}

/// Turns a facilitator's "someone joined" emails on or off.
pub async fn change_join_notices(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, AppError> {
    let (_, membership) = facilitated(&state, &person, circle_id).await?;
    let on = match data.get("notices") {
        "on" => true,
        "off" => false,
        _ => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                views::circles::refused(
                    &person.display_name,
                    "Nothing changed",
                    "Choose whether to be emailed when someone joins.",
                    &format!("/circles/{circle_id}#email"),
                ),
            )
                .into_response());
        }
    };
    let membership_id = membership.id;
    state
        .db
        .run(move |conn| store::set_join_notices(conn, membership_id, on))
        .await?;
    let done = if on {
        "join-notices-on"
    } else {
        "join-notices-off"
    };
    Ok(Redirect::to(&format!("/circles/{circle_id}?done={done}#email")).into_response())
}

/// The circle's open and upcoming rounds as a file a facilitator can share
/// with people who do not subscribe to a feed.
pub async fn calendar_download(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let now = state.clock.now();
    let events = state
        .db
        .run(move |conn| calendar::rounds_of(conn, &[circle_id], now))
        .await?;
    let body = calendar::render(&circle.name, &events, &[], state.config.public_base(), now);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"circle-{circle_id}-rounds.ics\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The active member `membership_id` of the circle, by name.
async fn member_named(
    state: &AppState,
    circle_id: i64,
    membership_id: i64,
) -> Result<store::Member, AppError> {
    state
        .db
        .run(move |conn| store::list_members(conn, circle_id))
        .await?
        .into_iter()
        .find(|member| member.membership_id == membership_id)
        .ok_or(AppError::NotFound)
}

/// Asks before making a member a facilitator.
pub async fn make_facilitator_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, membership_id)): Path<(i64, i64)>,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let member = member_named(&state, circle_id, membership_id).await?;
    Ok(handover_confirmation(&person, &circle, &member).into_response())
}

fn handover_confirmation(
    person: &SignedIn,
    circle: &Circle,
    member: &store::Member,
) -> maud::Markup {
    let title = format!(
        "Make {} a facilitator of {}?",
        member.display_name, circle.name
    );
    let consequences = [format!(
        "{} will be able to change the circle's settings, invite and remove people, pause or archive it, and download its record, as you can. You stay a facilitator; once there are two, either of you may leave.",
        member.display_name
    )];
    let action = format!(
        "/circles/{}/members/{}/facilitator",
        circle.id, member.membership_id
    );
    let back = format!("/circles/{}", circle.id);
    views::circles::confirm(
        &person.display_name,
        &Confirmation {
            title: &title,
            consequences: &consequences,
            action: &action,
            fields: &[],
            button: &format!("Make {} a facilitator", member.display_name),
            danger: false,
            back: &back,
        },
    )
}

pub async fn make_facilitator(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, membership_id)): Path<(i64, i64)>,
    data: FormData,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    if !confirmed(&data) {
        let member = member_named(&state, circle_id, membership_id).await?;
        return Ok(handover_confirmation(&person, &circle, &member).into_response());
    }
    let changed = state
        .db
        .run(move |conn| store::make_facilitator(conn, circle_id, membership_id))
        .await?;
    if !changed {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to(&format!("/circles/{circle_id}?done=facilitator")).into_response())
}

/// Asks before removing a member.
pub async fn remove_member_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, membership_id)): Path<(i64, i64)>,
) -> Result<Response, AppError> {
    let (circle, _) = facilitated(&state, &person, circle_id).await?;
    let member = member_named(&state, circle_id, membership_id).await?;
    Ok(removal_confirmation(&person, &circle, &member).into_response())
}

fn removal_confirmation(
    person: &SignedIn,
    circle: &Circle,
    member: &store::Member,
) -> maud::Markup {
    let name = &member.display_name;
    let title = format!("Remove {name} from {}?", circle.name);
    let consequences = [
        format!(
            "{name} will no longer see the circle or get its emails, and leaves this round's pairs. What they shared in earlier rounds stays in the circle's history."
        ),
        format!("You can invite {name} again later if the circle wants them back."),
    ];
    let action = format!(
        "/circles/{}/members/{}/remove",
        circle.id, member.membership_id
    );
    let back = format!("/circles/{}", circle.id);
    views::circles::confirm(
        &person.display_name,
        &Confirmation {
            title: &title,
            consequences: &consequences,
            action: &action,
            fields: &[],
            button: &format!("Remove {name}"),
            danger: true,
            back: &back,
        },
    )
}

pub async fn remove_member(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((circle_id, membership_id)): Path<(i64, i64)>,
    data: FormData,
) -> Result<Response, AppError> {
    let (circle, own) = facilitated(&state, &person, circle_id).await?;
    if own.id == membership_id {
        return Ok(departure_refused(
            &person,
            circle_id,
            "To leave the circle yourself, use \"Leave this circle\".",
        ));
    }
    if !confirmed(&data) {
        let member = member_named(&state, circle_id, membership_id).await?;
        return Ok(removal_confirmation(&person, &circle, &member).into_response());
    }
    let now = state.clock.now().naive_utc();
    let outcome = state
        .db
        .run(move |conn| store::remove(conn, circle_id, membership_id, now))
        .await?;
    match outcome {
        Departure::Done => {
            Ok(Redirect::to(&format!("/circles/{circle_id}?done=removed")).into_response())
        }
        Departure::NotAMember => Err(AppError::NotFound),
        Departure::LastFacilitator => Ok(departure_refused(
            &person,
            circle_id,
            "A circle always keeps at least one facilitator.",
        )),
    }
}

/// Asks before leaving.
pub async fn leave_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
) -> Result<Response, AppError> {
    let (circle, _) = circle_for(&state, &person, circle_id).await?;
    Ok(leaving_confirmation(&person, &circle).into_response())
}

fn leaving_confirmation(person: &SignedIn, circle: &Circle) -> maud::Markup {
    let title = format!("Leave {}?", circle.name);
    let consequences = [
        "You will no longer see the circle or get its emails, and the others will see you have left. What you shared in earlier rounds stays in the circle's history; to take it away too, delete your data under Your data.".to_string(),
        "To come back later, ask a facilitator for an invitation.".to_string(),
    ];
    let action = format!("/circles/{}/leave", circle.id);
    let back = format!("/circles/{}", circle.id);
    views::circles::confirm(
        &person.display_name,
        &Confirmation {
            title: &title,
            consequences: &consequences,
            action: &action,
            fields: &[],
            button: "Leave the circle",
            danger: true,
            back: &back,
        },
    )
}

pub async fn leave(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
    data: FormData,
) -> Result<Response, AppError> {
    let (circle, own) = circle_for(&state, &person, circle_id).await?;
    if !confirmed(&data) {
        return Ok(leaving_confirmation(&person, &circle).into_response());
    }
    let now = state.clock.now().naive_utc();
    let outcome = state
        .db
        .run(move |conn| store::leave(conn, circle_id, own.id, now))
        .await?;
    match outcome {
        Departure::Done => Ok(Redirect::to("/").into_response()),
        Departure::NotAMember => Err(AppError::NotFound),
        Departure::LastFacilitator => Ok(departure_refused(
            &person,
            circle_id,
            "You are this circle's only facilitator. Make another member a facilitator first, then you can leave.",
        )),
    }
}

fn departure_refused(person: &SignedIn, circle_id: i64, why: &str) -> Response {
    (
        StatusCode::CONFLICT,
        views::circles::refused(
            &person.display_name,
            "Not yet",
            why,
            &format!("/circles/{circle_id}"),
        ),
    )
        .into_response()
}
