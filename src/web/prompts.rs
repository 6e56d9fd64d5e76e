//! Handlers for a circle's prompts page (`/circles/{id}/prompts`): choosing
//! the deck, pinning the next round's prompt, and adding the circle's own.
//!
//! Facilitators only: anyone else, members included, gets the same 404 as
//! for a circle that does not exist. A refused form answers 422 with the
//! page, the problem next to its field and the text kept; a change answers
//! 303 back to the page with a line saying what happened.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::Deserialize;

use super::form::FormData;
use super::session::SignedInPerson;
use super::views;
use super::views::prompts::{DeckChoice, NextPrompt, OwnLine, PromptChoice, PromptsPage};
use crate::app::AppState;
use crate::auth::session::SignedIn;
use crate::circles::store::{self, Circle};
use crate::error::AppError;
use crate::prompts::circle::{
    self, AddOwnPrompt, ChooseDeck, FieldErrors, MAX_OWN_PROMPTS, NewOwnPrompt, OwnPromptForm, Pin,
};
use crate::prompts::deck::{MAX_FOLLOW_UP_LEN, MAX_QUESTION_LEN, MAX_THEME_LEN};

/// Ids in paths are numbers; anything else names no circle: 404, not 400.
fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// The circle, if the signed-in person facilitates it; otherwise 404.
async fn facilitated(
    state: &AppState,
    person: &SignedIn,
    circle_id: i64,
) -> Result<Circle, AppError> {
    let person_id = person.person_id;
    match state
        .db
        .run(move |conn| store::find_for_member(conn, circle_id, person_id))
        .await?
    {
        Some((circle, membership)) if membership.is_facilitator() => Ok(circle),
        _ => Err(AppError::NotFound),
    }
}

fn day(at: NaiveDateTime, zone: Tz) -> String {
    at.and_utc()
        .with_timezone(&zone)
        .format("%-d %b %Y")
        .to_string()
}

/// Loads what the page shows and renders it with `status`.
async fn render(
    state: &AppState,
    person: &SignedIn,
    circle: &Circle,
    form: &OwnPromptForm,
    errors: &FieldErrors,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let circle_id = circle.id;
    let decks = state.decks.clone();
    let overview = state
        .db
        .run(move |conn| circle::overview(conn, &decks, circle_id))
        .await?;
    // A zone that no longer parses is shown in UTC rather than failing the page.
    let zone: Tz = circle.time_zone.parse().unwrap_or(Tz::UTC);
    let current = state.decks.get(&overview.deck);
    let next = overview.next.as_deref().and_then(|next_id| {
        overview
            .prompts
            .iter()
            .find(|line| line.id == next_id)
            .map(|line| NextPrompt {
                theme: line.theme.clone(),
                question: line.question.clone(),
                follow_up: line.follow_up.clone(),
                pinned: overview.pinned.as_deref() == Some(next_id),
            })
    });
    let stale_pin = overview
        .pinned
        .as_deref()
        .is_some_and(|pin| !overview.prompts.iter().any(|line| line.id == pin));
    let last_used_of = |id: &str| {
        overview
            .prompts
            .iter()
            .find(|line| line.id == id)
            .and_then(|line| line.last_used)
            .map(|at| day(at, zone))
    };
    let own_lines = overview
        .own
        .iter()
        .map(|prompt| OwnLine {
            theme: prompt.theme.clone(),
            question: prompt.question.clone(),
            follow_up: prompt.follow_up.clone(),
            last_used: last_used_of(&prompt.prompt_id()),
        })
        .collect();
    let page = PromptsPage {
        viewer: &person.display_name,
        circle_id,
        circle_name: &circle.name,
        deck: &overview.deck,
        deck_loaded: overview.deck_loaded,
        decks: state
            .decks
            .iter()
            .map(|deck| DeckChoice {
                name: deck.name().to_string(),
                title: deck.title().to_string(),
                description: deck.description().to_string(),
                prompts: deck.prompts().len(),
                themes: deck.themes().len(),
            })
            .collect(),
        next,
        stale_pin,
        selected: overview.pinned.clone().or_else(|| overview.next.clone()),
        used: overview
            .prompts
            .iter()
            .filter(|line| line.last_used.is_some())
            .count(),
        choices: overview
            .prompts
            .iter()
            .map(|line| PromptChoice {
                id: line.id.clone(),
                theme: line.theme.clone(),
                question: line.question.clone(),
                own: line.own,
                last_used: line.last_used.map(|at| day(at, zone)),
            })
            .collect(),
        own: own_lines,
        form,
        errors,
        notice,
        max_question: MAX_QUESTION_LEN,
        max_follow_up: MAX_FOLLOW_UP_LEN,
        max_theme: MAX_THEME_LEN,
        themes: current
            .map(|deck| {
                deck.themes()
                    .into_iter()
                    .map(|(theme, _)| theme.to_string())
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok((status, views::prompts::prompts_page(&page)).into_response())
}

/// A refusal of one field, shown on the page with a 422.
async fn refuse(
    state: &AppState,
    person: &SignedIn,
    circle: &Circle,
    field: &'static str,
    message: String,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    errors.insert(field, message);
    render(
        state,
        person,
        circle,
        &OwnPromptForm::default(),
        &errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

fn back_to_page(circle_id: i64, done: &str) -> Response {
    Redirect::to(&format!("/circles/{circle_id}/prompts?done={done}")).into_response()
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
    Query(query): Query<Done>,
) -> Result<Response, AppError> {
    let circle = facilitated(&state, &person, parse_id(&id)?).await?;
    let notice = match query.done.as_deref() {
        Some("deck") => Some("The circle now draws from the deck you chose."),
        Some("pinned") => Some("Pinned: the next round asks this prompt."),
        Some("unpinned") => Some("Unpinned: the next round takes the next prompt in order."),
        Some("added") => Some("Your prompt is added to the circle's rotation."),
        _ => None,
    };
    render(
        &state,
        &person,
        &circle,
        &OwnPromptForm::default(),
        &FieldErrors::new(),
        notice,
        StatusCode::OK,
    )
    .await
}

pub async fn choose_deck(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let circle = facilitated(&state, &person, parse_id(&id)?).await?;
    let circle_id = circle.id;
    let name = data.get("deck").trim().to_string();
    let decks = state.decks.clone();
    let now = state.clock.now().naive_utc();
    let outcome = state
        .db
        .run(move |conn| circle::choose_deck(conn, &decks, circle_id, &name, now))
        .await?;
    match outcome {
        ChooseDeck::Chosen => {
            tracing::info!(circle.id = circle_id, "prompt deck chosen");
            Ok(back_to_page(circle_id, "deck"))
        }
        ChooseDeck::UnknownDeck => {
            refuse(
                &state,
                &person,
                &circle,
                "deck",
                "Choose one of the decks listed.".into(),
            )
            .await
        }
    }
}

pub async fn pin(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let circle = facilitated(&state, &person, parse_id(&id)?).await?;
    let circle_id = circle.id;
    let prompt_id = data.get("prompt_id").trim().to_string();
    let decks = state.decks.clone();
    let now = state.clock.now().naive_utc();
    let outcome = state
        .db
        .run(move |conn| circle::pin(conn, &decks, circle_id, &prompt_id, now))
        .await?;
    match outcome {
        Pin::Pinned => Ok(back_to_page(circle_id, "pinned")),
        Pin::UnknownPrompt => {
            refuse(
                &state,
                &person,
                &circle,
                "prompt_id",
                "Choose one of the prompts listed.".into(),
            )
            .await
        }
    }
}

pub async fn unpin(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let circle = facilitated(&state, &person, parse_id(&id)?).await?;
    let circle_id = circle.id;
    let now = state.clock.now().naive_utc();
    state
        .db
        .run(move |conn| circle::unpin(conn, circle_id, now))
        .await?;
    Ok(back_to_page(circle_id, "unpinned"))
}

pub async fn add_own(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let circle = facilitated(&state, &person, parse_id(&id)?).await?;
    let circle_id = circle.id;
    let form = OwnPromptForm {
        theme: data.get("theme").into(),
        question: data.get("question").into(),
        follow_up: data.get("follow_up").into(),
    };
    let show = |errors: FieldErrors| {
        let state = &state;
        let person = &person;
        let circle = &circle;
        let form = &form;
        async move {
            render(
                state,
                person,
                circle,
                form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let prompt = match NewOwnPrompt::parse(&form) {
        Ok(prompt) => prompt,
        Err(errors) => return show(errors).await,
    };
    let now = state.clock.now().naive_utc();
    let outcome = state
        .db
        .run(move |conn| circle::add_own(conn, circle_id, &prompt, now))
        .await?;
    match outcome {
        AddOwnPrompt::Added { prompt_id } => {
            tracing::info!(circle.id = circle_id, prompt.id = %prompt_id, "own prompt added");
            Ok(back_to_page(circle_id, "added"))
        }
        AddOwnPrompt::Full => {
            let mut errors = FieldErrors::new();
            errors.insert(
                "question",
                format!("A circle can keep up to {MAX_OWN_PROMPTS} prompts of its own, and this one has that many."),
            );
            show(errors).await
        }
    }
}
