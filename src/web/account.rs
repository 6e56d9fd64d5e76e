//! Handlers for "Your data": the time zone a person reads times in, a
//! person's copy of their data (JSON, CSV), deleting it, and a
//! facilitator's copy of a circle. A circle's copy
//! answers 404 to anyone but its active facilitators, like every circle
//! route does to non-members.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::FormData;
use super::session::{SignedInPerson, cleared_cookie, redirect_setting};
use super::shown_once;
use super::views;
use super::views::account::{
    AddressForm, CONFIRM_WORD, CalendarPart, FacilitatedCircle, NameForm, ZoneForm,
};
use super::views::circles::Confirmation;
use crate::app::AppState;
use crate::auth::Token;
use crate::auth::session::SignedIn;
use crate::auth::sign_in::DisplayName;
use crate::calendar;
use crate::circles::store;
use crate::error::AppError;
use crate::mail::EmailAddress;
use crate::people::delete::{self, Deletion, NeedsFacilitator};
use crate::people::export::{self, FormatError, PersonExport};
use crate::people::{self, address, zone};
use crate::text;

const JSON: &str = "application/json";
const CSV: &str = "text/csv; charset=utf-8";

impl From<FormatError> for AppError {
    fn from(error: FormatError) -> Self {
        AppError::Internal(error.to_string())
    }
}

/// A file to save rather than show. Personal data: no cache keeps a copy.
fn download(body: String, content_type: &'static str, filename: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `shoulder-<what>-<date>.<ext>`, dated by today in UTC.
fn filename(state: &AppState, what: &str, extension: &str) -> String {
    let today = state.clock.now().format("%Y-%m-%d");
    format!("shoulder-{what}-{today}.{extension}")
}

async fn needs_facilitator(
    state: &AppState,
    person: &SignedIn,
) -> Result<Vec<NeedsFacilitator>, AppError> {
    let person_id = person.person_id;
    Ok(state
        .db
        .run(move |conn| delete::circles_needing_a_facilitator(conn, person_id))
        .await?)
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let shown = Shown {
        saved: query.saved.as_deref(),
        carried_feed: shown_once::carried(&headers),
        ..Shown::default()
    };
    your_data(&state, &person, shown)
        .await
        .map(IntoResponse::into_response)
}

/// Asks a new address to confirm itself, telling the present one.
pub async fn change_address(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    data: FormData,
) -> Result<Response, AppError> {
    let typed = data.get("email").to_string();
    let problem = match EmailAddress::parse(&typed) {
        Err(error) => text::sentence(&error.to_string()),
        Ok(new) => {
            let person_id = person.person_id;
            let now = state.clock.now();
            let base = state.config.public_base().to_string();
            let asked = state
                .db
                .run(move |conn| address::request(conn, person_id, &new, &base, now))
                .await?;
            match asked {
                Ok(()) => {
                    state.wake_jobs();
                    return Ok(Redirect::to("/me?saved=email#your-address").into_response());
                }
                Err(refused) => refused.message().to_string(),
            }
        }
    };
    let shown = Shown {
        address_typed: Some(&typed),
        address_error: Some(&problem),
        ..Shown::default()
    };
    let page = your_data(&state, &person, shown).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The page behind an address's confirmation link; changes nothing.
pub async fn confirm_address_page(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let Some(token) = Token::parse(&raw) else {
        return Ok(address_link_refused(&address::Link::Unknown));
    };
    let now = state.clock.now();
    let link = state
        .db
        .run(move |conn| address::peek(conn, &token, now))
        .await?;
    Ok(match link {
        address::Link::Valid { new, .. } => {
            views::account::confirm_address(&raw, &new).into_response()
        }
        other => address_link_refused(&other),
    })
}

/// Uses the link; then a page that says so (a reload asks nothing again).
pub async fn confirm_address(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let Some(token) = Token::parse(&raw) else {
        return Ok(address_link_refused(&address::Link::Unknown));
    };
    let now = state.clock.now();
    let confirmed = state
        .db
        .run(move |conn| address::confirm(conn, &token, now))
        .await?;
    Ok(match confirmed {
        address::Confirmed::Changed { person_id } => {
            tracing::info!(person.id = person_id, "email address changed");
            Redirect::to("/me/email/changed").into_response()
        }
        address::Confirmed::Taken => (
            StatusCode::CONFLICT,
            views::account::address_outcome(
                "That address is taken",
                "Another account started using this address after the link was sent, so your address has not changed.",
            ),
        )
            .into_response(),
        address::Confirmed::NotUsable(link) => address_link_refused(&link),
    })
}

pub async fn address_changed() -> Response {
    views::account::address_outcome(
        "Your new address is confirmed",
        "Shoulder writes to it from now on, and you sign in with it.",
    )
    .into_response()
}

fn address_link_refused(link: &address::Link) -> Response {
    let (status, title, text) = match link {
        address::Link::Expired => (
            StatusCode::GONE,
            "This link has expired",
            "Confirmation links work for 24 hours. Ask for a new one under Your data; your address has not changed.",
        ),
        address::Link::Used => (
            StatusCode::GONE,
            "This link has been used",
            "Each confirmation link works once.",
        ),
        address::Link::Unknown | address::Link::Valid { .. } => (
            StatusCode::NOT_FOUND,
            "This link does not work",
            "It may have been copied incompletely, or a newer link replaced it. Ask for a new one under Your data.",
        ),
    };
    (status, views::account::address_outcome(title, text)).into_response()
}

/// Changes the name others see; a refused one is shown again as typed,
/// with why.
pub async fn set_name(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    data: FormData,
) -> Result<Response, AppError> {
    let typed = data.get("display_name").to_string();
    let problem = if typed.trim().is_empty() {
        "Please give the name people in your circles will see.".to_string()
    } else {
        match DisplayName::parse(&typed) {
            Ok(name) => {
                let person_id = person.person_id;
                state
                    .db
                    .run(move |conn| people::rename(conn, person_id, &name))
                    .await?;
                return Ok(Redirect::to("/me?saved=name#your-name").into_response());
            }
            Err(error) => text::sentence(&error.to_string()),
        }
    };
    let shown = Shown {
        name_typed: Some(&typed),
        name_error: Some(&problem),
        ..Shown::default()
    };
    let page = your_data(&state, &person, shown).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Sets the person's time zone; an unknown one is refused with what was
/// typed kept, and nothing changed.
pub async fn set_time_zone(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    data: FormData,
) -> Result<Response, AppError> {
    let typed = data.get("time_zone").to_string();
    match zone::parse(&typed) {
        Ok(name) => {
            let person_id = person.person_id;
            state
                .db
                .run(move |conn| zone::set(conn, person_id, &name))
                .await?;
            Ok(Redirect::to("/me?saved=zone#your-time").into_response())
        }
        Err(error) => {
            let shown = Shown {
                zone_typed: Some(&typed),
                zone_error: Some(error),
                ..Shown::default()
            };
            let page = your_data(&state, &person, shown).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// What "Your data" shows besides what is stored: an entry refused (as
/// sent, with why), what was just saved, a calendar address just made.
#[derive(Debug, Default)]
struct Shown<'a> {
    zone_typed: Option<&'a str>,
    zone_error: Option<&'a str>,
    name_typed: Option<&'a str>,
    name_error: Option<&'a str>,
    address_typed: Option<&'a str>,
    address_error: Option<&'a str>,
    /// `zone`, `name`, `email` or `calendar`, after a redirect.
    saved: Option<&'a str>,
    /// A calendar key made a moment ago (see [`shown_once`]), shown while
    /// it is still the person's.
    carried_feed: Option<Token>,
}

async fn your_data(
    state: &AppState,
    person: &SignedIn,
    shown: Shown<'_>,
) -> Result<maud::Markup, AppError> {
    let person_id = person.person_id;
    let carried = shown.carried_feed;
    let (circles, needs, kept, has_feed, new_feed) = state
        .db
        .run(move |conn| {
            let circles = store::list_for_person(conn, person_id)?;
            let needs = delete::circles_needing_a_facilitator(conn, person_id)?;
            let kept = zone::of(conn, person_id)?.map(|zone| zone.name().to_string());
            let has_feed = calendar::has_key(conn, person_id)?;
            let new_feed = match carried {
                Some(key) if calendar::person_of_key(conn, key.as_str())? == Some(person_id) => {
                    Some(key)
                }
                _ => None,
            };
            Ok::<_, AppError>((circles, needs, kept, has_feed, new_feed))
        })
        .await?;
    let new_feed = new_feed.map(|key| {
        format!(
            "{}/calendar/{}.ics",
            state.config.public_base(),
            key.as_str()
        )
    });
    let facilitated: Vec<FacilitatedCircle> = circles
        .into_iter()
        .filter(|(_, role)| role == store::ROLE_FACILITATOR)
        .map(|(circle, _)| FacilitatedCircle {
            id: circle.id,
            name: circle.name,
        })
        .collect();
    Ok(views::account::your_data(
        &person.display_name,
        &facilitated,
        &needs,
        &NameForm {
            kept: &person.display_name,
            typed: shown.name_typed,
            error: shown.name_error,
            saved: shown.saved == Some("name"),
        },
        &AddressForm {
            current: &person.email,
            typed: shown.address_typed,
            error: shown.address_error,
            sent: shown.saved == Some("email"),
        },
        &ZoneForm {
            kept: kept.as_deref(),
            typed: shown.zone_typed,
            error: shown.zone_error,
            saved: shown.saved == Some("zone"),
        },
        &CalendarPart {
            has_feed,
            new_feed: new_feed.as_deref(),
        },
    ))
}

fn replace_feed_confirmation(person: &SignedIn) -> maud::Markup {
    let consequences = [
        "Calendars subscribed to your present address stop getting your rounds; you will need to subscribe them to the new one.".to_string(),
    ];
    views::circles::confirm(
        &person.display_name,
        &Confirmation {
            title: "Replace your calendar address?",
            consequences: &consequences,
            action: "/me/calendar",
            fields: &[],
            button: "Make a new calendar address",
            danger: true,
            back: "/me#your-calendar",
        },
    )
}

/// The confirmation page behind "Make a new calendar address".
pub async fn replace_calendar_key_page(SignedInPerson(person): SignedInPerson) -> Response {
    replace_feed_confirmation(&person).into_response()
}

/// Makes the person's calendar feed a new key, ending the old one (asked
/// first when there is one), and redirects to `/me`, which shows its
/// address for a few minutes: only its hash is kept, so the key travels in
/// a cookie for that page alone.
pub async fn replace_calendar_key(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    data: FormData,
) -> Result<Response, AppError> {
    let person_id = person.person_id;
    let has_feed = state
        .db
        .run(move |conn| calendar::has_key(conn, person_id))
        .await?;
    if has_feed && data.get("confirm") != "yes" {
        return Ok(replace_feed_confirmation(&person).into_response());
    }
    let key = state
        .db
        .run(move |conn| calendar::replace_key(conn, person_id))
        .await?;
    let cookie = shown_once::carry(&key, "/me", state.config.public_url_is_https());
    Ok(redirect_setting("/me?saved=calendar#your-calendar", cookie))
}

/// A person's calendar feed; 404 for a key that is not, or no longer, one.
pub async fn calendar_feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let key = file
        .strip_suffix(".ics")
        .ok_or(AppError::NotFound)?
        .to_string();
    let now = state.clock.now();
    let base = state.config.public_base().to_string();
    let feed = state
        .db
        .read(move |conn| {
            let Some(person_id) = calendar::person_of_key(conn, &key)? else {
                return Ok::<_, AppError>(None);
            };
            Ok(Some(calendar::feed_of(conn, person_id, &base, now)?))
        })
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        feed,
    )
        .into_response())
}

async fn my_export(state: &AppState, person: &SignedIn) -> Result<PersonExport, AppError> {
    let person_id = person.person_id;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| export::person(conn, person_id, now))
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn export_json(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
) -> Result<Response, AppError> {
    let data = my_export(&state, &person).await?;
    let body = export::to_json(&data)?;
    Ok(download(body, JSON, &filename(&state, "my-data", "json")))
}

pub async fn export_csv(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
) -> Result<Response, AppError> {
    let data = my_export(&state, &person).await?;
    let body = export::person_csv(&data)?;
    Ok(download(body, CSV, &filename(&state, "my-data", "csv")))
}

pub async fn delete_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
) -> Result<Response, AppError> {
    let needs = needs_facilitator(&state, &person).await?;
    Ok(views::account::confirm_delete(&person.display_name, &needs, "", None).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    form: FormData,
) -> Result<Response, AppError> {
    let typed = form.get("confirm");
    if !typed.trim().eq_ignore_ascii_case(CONFIRM_WORD) {
        let needs = needs_facilitator(&state, &person).await?;
        let problem = format!(
            "To delete your data, type the word \"{CONFIRM_WORD}\" in the box. Nothing was deleted."
        );
        let page =
            views::account::confirm_delete(&person.display_name, &needs, typed, Some(&problem));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let person_id = person.person_id;
    let now = state.clock.now();
    let outcome = state
        .db
        .run(move |conn| delete::delete(conn, person_id, now))
        .await?;
    let done = || {
        // The sessions are gone from the database; the cookie goes too. A
        // redirect, so a reload asks for nothing again.
        redirect_setting(
            "/me/deleted",
            cleared_cookie(state.config.public_url_is_https()),
        )
    };
    match outcome {
        Deletion::Deleted => {
            tracing::info!(person.id = person_id, "a person deleted their data");
            Ok(done())
        }
        // Deleted a moment ago, from another tab: the same answer.
        Deletion::NotFound => Ok(done()),
        Deletion::SoleFacilitator {
            circle_id,
            circle_name,
        } => {
            let problem = format!(
                "You are the only facilitator of {circle_name}, and others are still in it. \
                 Make someone else its facilitator first, then delete your data. Nothing was deleted."
            );
            let needs = vec![NeedsFacilitator {
                circle_id,
                name: circle_name,
            }];
            let page =
                views::account::confirm_delete(&person.display_name, &needs, typed, Some(&problem));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}

/// Where deleting one's data leads: it says what happened, to anyone.
pub async fn deleted() -> Response {
    views::account::deleted().into_response()
}

async fn circle_export(
    state: &AppState,
    person: &SignedIn,
    circle_id: i64,
) -> Result<export::CircleExport, AppError> {
    let person_id = person.person_id;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| export::circle_for_facilitator(conn, circle_id, person_id, now))
        .await?
        .ok_or(AppError::NotFound)
}

pub async fn circle_export_json(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
) -> Result<Response, AppError> {
    let data = circle_export(&state, &person, circle_id).await?;
    let body = export::to_json(&data)?;
    let name = filename(&state, &format!("circle-{circle_id}"), "json");
    Ok(download(body, JSON, &name))
}

pub async fn circle_export_csv(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(circle_id): Path<i64>,
) -> Result<Response, AppError> {
    let data = circle_export(&state, &person, circle_id).await?;
    let body = export::circle_csv(&data)?;
    let name = filename(&state, &format!("circle-{circle_id}"), "csv");
    Ok(download(body, CSV, &name))
}
