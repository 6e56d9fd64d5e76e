//! The operator's circle commands: start a circle, print an invite link,
//! import an existing group. Each returns the text to print, or says whether
//! the input was wrong (exit 2) or the work failed (exit 1).

use std::fmt::Write as _;
use std::path::Path;

use chrono::Duration;
use diesel::prelude::*;

use crate::app::AppState;
use crate::circles::import::{self, ImportError, ImportOutcome, RowOutcome};
use crate::circles::invites::{self, ResetLink};
use crate::circles::settings::{Settings, SettingsForm};
use crate::circles::store;
use crate::db::DbError;
use crate::mail::EmailAddress;
use crate::text;

#[derive(Debug)]
pub enum CliError {
    /// What was asked for is wrong: exit code 2.
    Input(String),
    /// It could not be done: exit code 1.
    Failed(String),
}

impl From<DbError> for CliError {
    fn from(error: DbError) -> Self {
        CliError::Failed(error.to_string())
    }
}

pub struct CreateCircle {
    pub form: SettingsForm,
    pub facilitator: String,
    pub facilitator_name: Option<String>,
}

fn link_lifetime(state: &AppState) -> Duration {
    Duration::days(i64::from(state.config.circles.invite_link_days))
}

/// Starts a circle and makes its first invite link.
pub async fn create_circle(state: &AppState, request: CreateCircle) -> Result<String, CliError> {
    let email = EmailAddress::parse(&request.facilitator)
        .map_err(|e| CliError::Input(format!("--facilitator: {e}")))?;
    let default_name = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or("Facilitator")
        .to_string();
    let name = text::single_line(
        request.facilitator_name.as_deref().unwrap_or(&default_name),
        crate::auth::sign_in::MAX_DISPLAY_NAME_LEN,
    )
    .map_err(|e| CliError::Input(format!("--facilitator-name: {e}")))?;
    let now = state.clock.now();
    let zone = request
        .form
        .time_zone
        .parse::<chrono_tz::Tz>()
        .unwrap_or(chrono_tz::UTC);
    let settings = Settings::parse(&request.form, now.with_timezone(&zone).date_naive()).map_err(
        |errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|(field, message)| format!("--{}: {message}", option_for(field)))
                .collect();
            CliError::Input(lines.join("; "))
        },
    )?;
    let lifetime = link_lifetime(state);
    let (circle_id, link) = state
        .db
        .run(move |conn| {
            let person =
                store::find_or_create_person(conn, email.as_str(), &name, now.naive_utc())?;
            let circle_id = store::create(conn, person, &settings, now)?;
            let link = invites::reset_link(conn, circle_id, person, lifetime, now)?;
            Ok::<_, DbError>((circle_id, link))
        })
        .await?;
    let mut out = format!("circle {circle_id} started\n");
    if let ResetLink::Made(link) = link {
        let _ = writeln!(
            out,
            "invite link: {}/join/{} (until {} UTC)",
            state.config.public_base(),
            link.token.as_str(),
            link.expires_at.format("%Y-%m-%d %H:%M")
        );
    }
    Ok(out)
}

/// The command-line option a settings field came from.
fn option_for(field: &str) -> &str {
    match field {
        "days" | "time" | "every_weeks" | "month_day" | "cron" | "cadence_kind" => "cadence",
        "time_zone" => "time-zone",
        "round_hours" => "round-hours",
        "size_cap" => "size-cap",
        other => other,
    }
}

/// Makes a new reusable link, on behalf of the circle's first facilitator.
pub async fn invite_link(state: &AppState, circle_id: i64) -> Result<String, CliError> {
    let now = state.clock.now();
    let lifetime = link_lifetime(state);
    let made = state
        .db
        .run(move |conn| {
            let members = store::list_members(conn, circle_id)?;
            let Some(facilitator) = members.iter().find(|m| m.role == store::ROLE_FACILITATOR)
            else {
                return Ok(None);
            };
            Ok::<_, DbError>(Some(invites::reset_link(
                conn,
                circle_id,
                facilitator.person_id,
                lifetime,
                now,
            )?))
        })
        .await?;
    match made {
        None => Err(CliError::Input(format!("there is no circle {circle_id}"))),
        Some(ResetLink::Made(link)) => Ok(format!(
            "{}/join/{} (until {} UTC; earlier links no longer work)\n",
            state.config.public_base(),
            link.token.as_str(),
            link.expires_at.format("%Y-%m-%d %H:%M")
        )),
        Some(ResetLink::CircleNotActive(status)) => Err(CliError::Input(format!(
            "circle {circle_id} is {}; it takes no new members",
            status.as_str()
        ))),
        Some(ResetLink::NotFacilitator) => Err(CliError::Failed(format!(
            "circle {circle_id} has no facilitator who can make a link"
        ))),
    }
}

/// Adds the people of a CSV file (email,name), or none if any row is bad.
pub async fn import_members(
    state: &AppState,
    circle_id: i64,
    file: &Path,
) -> Result<String, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let rows = import::parse_csv(&text).map_err(|problems| {
        let mut out = format!("{}: nothing was imported; fix these rows:", file.display());
        for problem in problems {
            let _ = write!(out, "\n  line {}: {}", problem.line, problem.reason);
        }
        CliError::Input(out)
    })?;
    let now = state.clock.now();
    let worker = state.clone();
    let outcome = state
        .db
        .run(move |conn| import::import(conn, worker.config.public_base(), circle_id, rows, now))
        .await
        .map_err(|ImportError::Db(error)| CliError::Failed(error.to_string()))?;
    match outcome {
        ImportOutcome::Imported(rows) => {
            let mut out = String::new();
            for (row, outcome) in rows {
                let what = match outcome {
                    RowOutcome::Added => "added; welcome email queued",
                    RowOutcome::AlreadyMember => "already a member; unchanged",
                };
                let _ = writeln!(
                    out,
                    "line {}: {} ({}): {what}",
                    row.line,
                    row.email,
                    row.name.as_str()
                );
            }
            Ok(out)
        }
        ImportOutcome::NoSuchCircle => {
            Err(CliError::Input(format!("there is no circle {circle_id}")))
        }
        ImportOutcome::NotActive(status) => Err(CliError::Input(format!(
            "circle {circle_id} is {}; nothing was imported",
            status.as_str()
        ))),
        ImportOutcome::OverCap { cap, members, new } => Err(CliError::Input(format!(
            "circle {circle_id} has room for {cap} and has {members} members; the file would add {new}. Nothing was imported."
        ))),
    }
}

/// People in the demo circle: the facilitator first.
const DEMO_PEOPLE: [(&str, &str); 4] = [
    ("facilitator@demo.example", "Robin (facilitator)"),
    ("ada@demo.example", "Ada"),
    ("bea@demo.example", "Bea"),
    ("cy@demo.example", "Cy"),
];

/// Starts a small demo circle whose first round opens right now, so its
/// check-in emails are there to read at once.
pub async fn demo(state: &AppState) -> Result<String, CliError> {
    let now = state.clock.now();
    let zone = crate::circles::cadence::parse_time_zone(&state.config.circles.default_time_zone)
        .unwrap_or(chrono_tz::UTC);
    let local = now.with_timezone(&zone);
    // A weekly slot at this very minute: its first occurrence is now.
    let mut form = SettingsForm::new(zone.name());
    form.name = "Demo circle".into();
    form.purpose = "Trying Shoulder out: one shared question, a few honest commitments.".into();
    form.agreements =
        "We listen before we advise.\nAn honest \"not yet\" is always welcome.".into();
    form.days = vec![chrono::Weekday::to_string(&chrono::Datelike::weekday(&local)).to_lowercase()];
    form.time = local.format("%H:%M").to_string();
    let settings = Settings::parse(&form, local.date_naive())
        .map_err(|errors| CliError::Failed(format!("the demo settings are invalid: {errors:?}")))?;
    let first = settings
        .cadence
        .next_after(zone, now - Duration::minutes(1))
        .ok_or_else(|| CliError::Failed("the demo schedule never fires".into()))?;
    let circle_id = state
        .db
        .run(move |conn| {
            let at = now.naive_utc();
            let (facilitator_email, facilitator_name) = DEMO_PEOPLE[0];
            let facilitator =
                store::find_or_create_person(conn, facilitator_email, facilitator_name, at)?;
            let circle_id = store::create(conn, facilitator, &settings, now)?;
            for (email, name) in &DEMO_PEOPLE[1..] {
                let person = store::find_or_create_person(conn, email, name, at)?;
                store::add_member(conn, circle_id, person, store::ROLE_MEMBER, at)?;
            }
            // Due now, so the next pass opens round 1.
            diesel::update(crate::db::schema::circles::table.find(circle_id))
                .set(crate::db::schema::circles::next_round_at.eq(first.at.naive_utc()))
                .execute(conn)?;
            Ok::<_, DbError>(circle_id)
        })
        .await?;
    Ok(format!(
        "demo circle {circle_id} started with {} people; its first round opens now.\n\
         Sign in as {} to see it; the check-in emails are at {}/dev/mail when the server runs with the file transport.\n",
        DEMO_PEOPLE.len(),
        DEMO_PEOPLE[0].0,
        state.config.public_base()
    ))
}
