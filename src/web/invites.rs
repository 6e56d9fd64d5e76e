//! Handlers for inviting people (the facilitator's invite page, the
//! reusable link, email invites, revoking) and for joining through an
//! invite (the invite page, the join request, the emailed confirmation).
//!
//! The facilitator routes answer 404 to anyone who is not a facilitator of
//! the circle, members included, as every circle page does to outsiders.
//! Invite and confirmation links are opened with GET, which only looks; the
//! buttons on their pages POST.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;
use maud::Markup;
use serde::Deserialize;

use super::form::FormData;
use super::limits::{ClientAddress, Door, in_words, refusal_over_limit, too_many, wait_over_limit};
use super::session::{SignedInPerson, Viewer, redirect_setting, session_cookie};
use super::shown_once;
use super::views;
use super::views::circles::Confirmation as Asking;
use super::views::invites::{BatchView, InvitePage, JoinForm, JoinZone, LinkView, PendingRow};
use crate::app::AppState;
use crate::auth::Token;
use crate::auth::session::SignedIn;
use crate::auth::sign_in::DisplayName;
use crate::circles::invites::{
    self, AddressList, AddressOutcome, AddressResult, Batch, ConfirmError, Confirmation, Confirmed,
    InviteError, InviteOverview, JOIN_LINK_LIFETIME, JoinOffer, JoinRequest, JoinRequested,
    LinkStatus, MAX_ADDRESSES_PER_BATCH, Mailing, Opened, Refusal, ResetLink, Revoke, SendInvites,
};
use crate::circles::store::CircleStatus;
use crate::clock::local_text;
use crate::error::AppError;
use crate::mail::EmailAddress;
use crate::people::zone;
use crate::text;

impl From<InviteError> for AppError {
    fn from(error: InviteError) -> Self {
        match error {
            InviteError::Db(error) => AppError::from(error),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ConfirmError> for AppError {
    fn from(error: ConfirmError) -> Self {
        match error {
            ConfirmError::Db(error) => AppError::from(error),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// Ids in paths are numbers; anything else names no circle: 404, not 400.
fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn link_lifetime(state: &AppState) -> Duration {
    Duration::days(i64::from(state.config.circles.invite_link_days))
}

/// An instant as the circle's members read it, in the circle's own zone.
fn when(at: NaiveDateTime, zone: Tz) -> String {
    local_text(at.and_utc(), zone)
}

fn day(at: NaiveDateTime, zone: Tz) -> String {
    at.and_utc()
        .with_timezone(&zone)
        .format("%-d %b %Y")
        .to_string()
}

/// Everything the invite page shows besides the form, from the overview.
struct Shown {
    circle_name: String,
    closed: Option<CircleStatus>,
    members: i64,
    size_cap: i32,
    link: LinkView,
    pending: Vec<PendingRow>,
}

/// `carried` is a link made a moment ago, shown only while it is still the
/// circle's link.
fn shown(overview: InviteOverview, carried: Option<(&Token, &str)>) -> Shown {
    let circle = overview.circle;
    // A zone that no longer parses is shown in UTC rather than failing the page.
    let zone: Tz = circle.time_zone.parse().unwrap_or(Tz::UTC);
    let current = carried
        .filter(|(token, _)| circle.invite_token_hash.as_deref() == Some(token.hash().as_str()));
    let link = match (current, overview.link) {
        (Some((token, base)), LinkStatus::Active { expires_at }) => LinkView::Fresh {
            url: format!("{base}/join/{}", token.as_str()),
            expires: when(expires_at, zone),
        },
        (_, LinkStatus::Active { expires_at }) => LinkView::Exists {
            expires: when(expires_at, zone),
        },
        (_, LinkStatus::Expired { expired_at }) => LinkView::Expired {
            expired: when(expired_at, zone),
        },
        (_, LinkStatus::NotMade) => LinkView::NotMade,
    };
    let status = circle.status();
    Shown {
        closed: (status != CircleStatus::Active).then_some(status),
        members: overview.members,
        size_cap: circle.size_cap,
        link,
        pending: overview
            .pending
            .into_iter()
            .map(|invite| PendingRow {
                id: invite.id,
                email: invite.email,
                sent: day(invite.sent_at, zone),
                expires: day(invite.expires_at, zone),
            })
            .collect(),
        circle_name: circle.name,
    }
}

fn render_invite_page(
    state: &AppState,
    viewer: &str,
    circle_id: i64,
    shown: &Shown,
    batch: BatchView<'_>,
    notice: Option<&str>,
) -> maud::Markup {
    views::invites::invite_page(&InvitePage {
        viewer,
        circle_id,
        circle_name: &shown.circle_name,
        closed: shown.closed,
        members: shown.members,
        size_cap: shown.size_cap,
        link: shown.link.clone(),
        pending: &shown.pending,
        batch,
        notice,
        max_addresses: MAX_ADDRESSES_PER_BATCH,
        days: state.config.circles.invite_link_days,
    })
}

async fn load_overview(
    state: &AppState,
    circle_id: i64,
    person_id: i64,
) -> Result<InviteOverview, AppError> {
    let now = state.clock.now();
    state
        .db
        .run(move |conn| invites::overview(conn, circle_id, person_id, now))
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    /// After a batch of email invites: how many were sent, and how many
    /// were not because they were members, invited lately or listed twice.
    #[serde(default)]
    sent: usize,
    #[serde(default)]
    member: usize,
    #[serde(default)]
    invited: usize,
    #[serde(default)]
    twice: usize,
}

pub async fn invite_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
    Query(query): Query<Done>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let overview = load_overview(&state, circle_id, person.person_id).await?;
    let carried = shown_once::carried(&headers);
    let shown = shown(
        overview,
        carried
            .as_ref()
            .map(|token| (token, state.config.public_base())),
    );
    let notice = match query.done.as_deref() {
        Some("revoked") => {
            Some("The invitation was withdrawn; its link no longer works.".to_string())
        }
        Some("closed") => {
            Some("That invitation had already been used, withdrawn or had expired.".to_string())
        }
        Some("link") if matches!(shown.link, LinkView::Fresh { .. }) => {
            Some("Here is the new invite link. Any earlier link has stopped working.".to_string())
        }
        Some("sent") => Some(sent_notice(&query)),
        _ => None,
    };
    Ok(render_invite_page(
        &state,
        &person.display_name,
        circle_id,
        &shown,
        BatchView::default(),
        notice.as_deref(),
    )
    .into_response())
}

/// What a batch did, from the counts its redirect carries.
fn sent_notice(query: &Done) -> String {
    let mut said = vec![match query.sent {
        0 => "No invitation was sent.".to_string(),
        1 => "1 invitation sent; it is listed below until it is answered.".to_string(),
        n => format!("{n} invitations sent; they are listed below until they are answered."),
    }];
    match query.member {
        0 => {}
        1 => said.push("1 address is already a member.".into()),
        n => said.push(format!("{n} addresses are already members.")),
    }
    match query.invited {
        0 => {}
        1 => {
            said.push("1 address was invited in the last day, so it was not emailed again.".into())
        }
        n => said.push(format!(
            "{n} addresses were invited in the last day, so they were not emailed again."
        )),
    }
    match query.twice {
        0 => {}
        1 => said.push("1 address was listed twice and invited once.".into()),
        n => said.push(format!("{n} addresses were listed twice and invited once.")),
    }
    said.join(" ")
}

/// Asks before replacing a link that still works: whoever was sent it and
/// has not yet asked to join would find it dead.
fn replace_link_confirmation(person: &SignedIn, circle_id: i64, circle_name: &str) -> Markup {
    let title = format!("Replace the invite link of {circle_name}?");
    let consequences = [
        "The link you have shared stops working at once: anyone who has it and has not yet asked to join will need the new one.".to_string(),
        "People who already asked to join keep their confirmation emails, and email invitations are not affected.".to_string(),
    ];
    let action = format!("/circles/{circle_id}/invites/link");
    let back = format!("/circles/{circle_id}/invites");
    views::circles::confirm(
        &person.display_name,
        &Asking {
            title: &title,
            consequences: &consequences,
            action: &action,
            fields: &[],
            button: "Replace the link",
            danger: true,
            back: &back,
        },
    )
}

/// The confirmation page behind "Make a new link"; it changes nothing.
pub async fn reset_link_page(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let overview = load_overview(&state, circle_id, person.person_id).await?;
    Ok(replace_link_confirmation(&person, circle_id, &overview.circle.name).into_response())
}

/// Makes a new reusable link, asking first if one still works, and answers
/// with a redirect to the invite page, which shows the link: it travels
/// there in a cookie for that page alone (see [`shown_once`]), since only
/// its hash is kept.
pub async fn reset_link(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    client: ClientAddress,
    Path(id): Path<String>,
    data: FormData,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let overview = load_overview(&state, circle_id, person.person_id).await?;
    let works = matches!(overview.link, LinkStatus::Active { .. });
    if works && data.get("confirm") != "yes" {
        return Ok(
            replace_link_confirmation(&person, circle_id, &overview.circle.name).into_response(),
        );
    }
    if let Some(refusal) = refusal_over_limit(&state, Door::Invite, client) {
        return Ok(refusal);
    }
    let now = state.clock.now();
    let lifetime = link_lifetime(&state);
    let person_id = person.person_id;
    let reset = state
        .db
        .run(move |conn| invites::reset_link(conn, circle_id, person_id, lifetime, now))
        .await?;
    match reset {
        ResetLink::Made(link) => {
            let page = format!("/circles/{circle_id}/invites");
            let cookie = shown_once::carry(&link.token, &page, state.config.public_url_is_https());
            Ok(redirect_setting(
                &format!("{page}?done=link#invite-link"),
                cookie,
            ))
        }
        ResetLink::CircleNotActive(_) => {
            let shown = shown(overview, None);
            let page = render_invite_page(
                &state,
                &person.display_name,
                circle_id,
                &shown,
                BatchView::default(),
                None,
            );
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        ResetLink::NotFacilitator => Err(AppError::NotFound),
    }
}

/// What the invite form's fields say is wrong, each kept beside its field.
struct BatchProblems {
    addresses: Option<String>,
    note: Option<String>,
}

fn parse_batch(typed: &str, note: &str) -> Result<Batch, BatchProblems> {
    let addresses = AddressList::parse(typed).map_err(|e| text::sentence(&e.to_string()));
    let note = invites::parse_note(note).map_err(|e| text::sentence(&format!("your note: {e}")));
    match (addresses, note) {
        (Ok(addresses), Ok(note)) => Ok(Batch { addresses, note }),
        (addresses, note) => Err(BatchProblems {
            addresses: addresses.err(),
            note: note.err(),
        }),
    }
}

/// Whether an address's outcome asks the facilitator to do something: fix
/// a typo, or try again later.
fn needs_another_look(outcome: &AddressOutcome) -> bool {
    matches!(
        outcome,
        AddressOutcome::Malformed(_)
            | AddressOutcome::CircleCapReached
            | AddressOutcome::DailyCapReached
            | AddressOutcome::NewAddressCapReached
    )
}

/// The invite page's address after a batch with nothing to look at again:
/// how many were sent and why any others were not, as counts.
fn sent_summary(circle_id: i64, results: &[AddressResult]) -> String {
    let count =
        |wanted: fn(&AddressOutcome) -> bool| results.iter().filter(|r| wanted(&r.outcome)).count();
    format!(
        "/circles/{circle_id}/invites?done=sent&sent={}&member={}&invited={}&twice={}#email-invites",
        count(AddressOutcome::sent),
        count(|o| *o == AddressOutcome::AlreadyMember),
        count(|o| *o == AddressOutcome::AlreadyInvited),
        count(|o| *o == AddressOutcome::Repeated),
    )
}

/// Sends email invites. A batch every address of which was dealt with
/// answers with a redirect to the invite page, which says what happened in
/// counts and lists the invitations now waiting; a batch with addresses to
/// look at again shows each address's outcome and keeps those in the box.
pub async fn send(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    client: ClientAddress,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let typed = form.get("addresses").to_string();
    let typed_note = form.get("note").to_string();
    let person_id = person.person_id;
    let parsed = match wait_over_limit(&state, Door::Invite, client) {
        Some(wait) => Err((
            BatchProblems {
                addresses: Some(format!(
                    "Many invitations have been sent from your network. Please try again {}.",
                    in_words(wait)
                )),
                note: None,
            },
            Some(wait),
        )),
        None => parse_batch(&typed, &typed_note).map_err(|problems| (problems, None)),
    };
    let batch = match parsed {
        Ok(batch) => batch,
        Err((problems, wait)) => {
            let overview = load_overview(&state, circle_id, person_id).await?;
            let shown = shown(overview, None);
            let page = render_invite_page(
                &state,
                &person.display_name,
                circle_id,
                &shown,
                BatchView {
                    typed: &typed,
                    note: &typed_note,
                    error: problems.addresses,
                    note_error: problems.note,
                    results: &[],
                },
                None,
            );
            return Ok(match wait {
                Some(wait) => too_many(wait, page),
                None => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            });
        }
    };
    let now = state.clock.now();
    let lifetime = link_lifetime(&state);
    let worker = state.clone();
    let (outcome, overview) = state
        .db
        .run(move |conn| {
            let mailing = Mailing {
                public_base: worker.config.public_base(),
                new_addresses_per_hour: worker.config.limits.new_addresses_per_hour,
            };
            let outcome =
                invites::send_invites(conn, mailing, circle_id, person_id, &batch, lifetime, now)?;
            let overview = invites::overview(conn, circle_id, person_id, now)?;
            Ok::<_, AppError>((outcome, overview))
        })
        .await?;
    let Some(overview) = overview else {
        return Err(AppError::NotFound);
    };
    let results = match &outcome {
        SendInvites::Done(results) => results,
        SendInvites::CircleNotActive(_) => {
            let page = render_invite_page(
                &state,
                &person.display_name,
                circle_id,
                &shown(overview, None),
                BatchView {
                    typed: &typed,
                    note: &typed_note,
                    ..BatchView::default()
                },
                None,
            );
            return Ok((StatusCode::CONFLICT, page).into_response());
        }
        SendInvites::NotFacilitator => return Err(AppError::NotFound),
    };
    if results.iter().any(|r| r.outcome.sent()) {
        state.wake_jobs();
    }
    if !results.iter().any(|r| needs_another_look(&r.outcome)) {
        return Ok(Redirect::to(&sent_summary(circle_id, results)).into_response());
    }
    // What was sent is done with; what was not stays in the box, the note
    // too, to send again once put right.
    let kept = results
        .iter()
        .filter(|r| needs_another_look(&r.outcome))
        .map(|r| r.entry.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let page = render_invite_page(
        &state,
        &person.display_name,
        circle_id,
        &shown(overview, None),
        BatchView {
            typed: &kept,
            note: &typed_note,
            error: None,
            note_error: None,
            results,
        },
        None,
    );
    Ok(page.into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    SignedInPerson(person): SignedInPerson,
    Path((id, invite_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let circle_id = parse_id(&id)?;
    let invite_id = parse_id(&invite_id)?;
    let now = state.clock.now();
    let person_id = person.person_id;
    let outcome = state
        .db
        .run(move |conn| invites::revoke(conn, circle_id, person_id, invite_id, now))
        .await?;
    let done = match outcome {
        Revoke::Revoked => "revoked",
        Revoke::NoLongerPending => "closed",
        Revoke::NotFound => return Err(AppError::NotFound),
    };
    Ok(Redirect::to(&format!("/circles/{circle_id}/invites?done={done}")).into_response())
}

// ---------------------------------------------------------------------------
// Joining
// ---------------------------------------------------------------------------

fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::UnknownLink => StatusCode::NOT_FOUND,
        Refusal::InviteExpired
        | Refusal::InviteRevoked
        | Refusal::InviteUsed
        | Refusal::LinkReplaced
        | Refusal::ConfirmationExpired
        | Refusal::ConfirmationUsed => StatusCode::GONE,
        Refusal::CircleFull { .. }
        | Refusal::CircleNotOpen { .. }
        | Refusal::AlreadyMember { .. }
        | Refusal::Removed { .. } => StatusCode::CONFLICT,
    }
}

fn refused(refusal: &Refusal, viewer: Option<&str>) -> Response {
    (
        refusal_status(refusal),
        views::invites::refused(refusal, viewer),
    )
        .into_response()
}

async fn open(state: &AppState, token: Token, viewer: Option<i64>) -> Result<Opened, AppError> {
    let now = state.clock.now();
    Ok(state
        .db
        .run(move |conn| invites::open_invite(conn, &token, viewer, now))
        .await?)
}

pub async fn join_page(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let name = viewer.as_ref().map(|v| v.display_name.as_str());
    let Some(token) = Token::parse(&raw) else {
        return Ok(refused(&Refusal::UnknownLink, name));
    };
    let offer = match open(&state, token.clone(), viewer.as_ref().map(|v| v.person_id)).await? {
        Opened::Offer(offer) => offer,
        Opened::Refused(refusal) => return Ok(refused(&refusal, name)),
    };
    // Someone signed in is offered the name and address they already use.
    let form = JoinForm {
        name: name.unwrap_or(""),
        email: viewer.as_ref().map_or("", |v| v.email.as_str()),
        ..JoinForm::default()
    };
    let reader = viewer.as_ref().and_then(|v| v.time_zone);
    Ok(views::invites::join(token.as_str(), &offer, &form, name, reader).into_response())
}

/// What is wrong with a join form, field by field.
struct JoinProblems {
    name: Option<String>,
    email: Option<String>,
    accept: Option<String>,
}

/// The join form's fields, parsed, or each field's problem.
fn parse_join_form(form: &FormData, offer: &JoinOffer) -> Result<JoinRequest, JoinProblems> {
    let name = DisplayName::parse(form.get("name")).map_err(|e| text::sentence(&e.to_string()));
    // An email invite's address is the one that joins, whatever the form says.
    let typed_email = offer.fixed_email.as_deref().unwrap_or(form.get("email"));
    let email = EmailAddress::parse(typed_email).map_err(|e| text::sentence(&e.to_string()));
    let accepted = form.get("accept") == "yes";
    match (name, email, accepted) {
        (Ok(name), Ok(email), true) => Ok(JoinRequest { name, email }),
        (name, email, accepted) => Err(JoinProblems {
            name: name.err(),
            email: email.err(),
            accept: (!accepted).then(|| {
                "Please read the agreements and tick the box if you accept them; \
                 they are what makes the circle work."
                    .to_string()
            }),
        }),
    }
}

pub async fn request_join(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    client: ClientAddress,
    Path(raw): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    let shown_name = viewer.as_ref().map(|v| v.display_name.clone());
    let name = shown_name.as_deref();
    let reader = viewer.as_ref().and_then(|v| v.time_zone);
    let Some(token) = Token::parse(&raw) else {
        return Ok(refused(&Refusal::UnknownLink, name));
    };
    let offer = match open(&state, token.clone(), viewer.as_ref().map(|v| v.person_id)).await? {
        Opened::Offer(offer) => offer,
        Opened::Refused(refusal) => return Ok(refused(&refusal, name)),
    };
    if let Some(wait) = wait_over_limit(&state, Door::Join, client) {
        // The form as typed, the reason beside the address it would mail.
        let typed = JoinForm {
            name: form.get("name"),
            email: form.get("email"),
            accepted: form.get("accept") == "yes",
            name_error: None,
            email_error: Some(format!(
                "Many requests to join have come from your network. Please try again {}.",
                in_words(wait)
            )),
            accept_error: None,
        };
        return Ok(too_many(
            wait,
            views::invites::join(token.as_str(), &offer, &typed, name, reader),
        ));
    }
    let request = match parse_join_form(&form, &offer) {
        Ok(request) => request,
        Err(problems) => {
            let typed = JoinForm {
                name: form.get("name"),
                email: form.get("email"),
                accepted: form.get("accept") == "yes",
                name_error: problems.name,
                email_error: problems.email,
                accept_error: problems.accept,
            };
            let page = views::invites::join(token.as_str(), &offer, &typed, name, reader);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let now = state.clock.now();
    let worker = state.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let mailing = Mailing {
                public_base: worker.config.public_base(),
                new_addresses_per_hour: worker.config.limits.new_addresses_per_hour,
            };
            invites::request_join(conn, mailing, &token, &request, now)
        })
        .await?;
    Ok(match outcome {
        JoinRequested::Sent { email, .. } => {
            state.wake_jobs();
            // A redirect, so a reload sends no second confirmation email.
            let page = format!("/join/{raw}/sent");
            let cookie = shown_once::carry_text(&email, &page, state.config.public_url_is_https());
            redirect_setting(&page, cookie)
        }
        JoinRequested::Refused(refusal) => refused(&refusal, name),
    })
}

/// "Check your email" after asking to join, naming the address while the
/// browser still has it.
pub async fn join_requested(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let name = viewer.as_ref().map(|v| v.display_name.as_str());
    let Some(token) = Token::parse(&raw) else {
        return Ok(refused(&Refusal::UnknownLink, name));
    };
    let offer = match open(&state, token, viewer.as_ref().map(|v| v.person_id)).await? {
        Opened::Offer(offer) => offer,
        Opened::Refused(refusal) => return Ok(refused(&refusal, name)),
    };
    let email = shown_once::carried_text(&headers);
    Ok(views::invites::check_your_email(
        email.as_deref(),
        &offer.circle_name,
        JOIN_LINK_LIFETIME.num_hours(),
        name,
    )
    .into_response())
}

pub async fn confirm_page(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    Path(raw): Path<String>,
) -> Result<Response, AppError> {
    let name = viewer.as_ref().map(|v| v.display_name.as_str());
    let Some(token) = Token::parse(&raw) else {
        return Ok(refused(&Refusal::UnknownLink, name));
    };
    let now = state.clock.now();
    let peeking = token.clone();
    let confirmation = state
        .db
        .run(move |conn| invites::peek_confirmation(conn, &peeking, now))
        .await?;
    Ok(match confirmation {
        Confirmation::Ready {
            circle_name,
            email,
            asks_time_zone,
        } => {
            let zone = asks_time_zone.then_some(JoinZone {
                sent: "",
                error: None,
            });
            views::invites::confirm(token.as_str(), &circle_name, &email, zone.as_ref(), name)
                .into_response()
        }
        Confirmation::Refused(refusal) => refused(&refusal, name),
    })
}

pub async fn confirm(
    State(state): State<AppState>,
    Viewer(viewer): Viewer,
    client: ClientAddress,
    Path(raw): Path<String>,
    form: FormData,
) -> Result<Response, AppError> {
    if let Some(refusal) = refusal_over_limit(&state, Door::Join, client) {
        return Ok(refusal);
    }
    let name = viewer.as_ref().map(|v| v.display_name.as_str());
    let Some(token) = Token::parse(&raw) else {
        return Ok(refused(&Refusal::UnknownLink, name));
    };
    let now = state.clock.now();
    // Sent only when the page asked; a choice made earlier is kept.
    let sent_zone = form.get("time_zone").to_string();
    let zone_name = if sent_zone.trim().is_empty() {
        None
    } else {
        match zone::parse(&sent_zone) {
            Ok(zone_name) => Some(zone_name),
            Err(error) => {
                let peeking = token.clone();
                let confirmation = state
                    .db
                    .run(move |conn| invites::peek_confirmation(conn, &peeking, now))
                    .await?;
                let Confirmation::Ready {
                    circle_name, email, ..
                } = confirmation
                else {
                    return Ok(refused(&Refusal::UnknownLink, name));
                };
                let zone = JoinZone {
                    sent: &sent_zone,
                    error: Some(error),
                };
                let page = views::invites::confirm(
                    token.as_str(),
                    &circle_name,
                    &email,
                    Some(&zone),
                    name,
                );
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
        }
    };
    let worker = state.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let public_base = worker.config.public_base();
            let outcome = invites::confirm_join(conn, &token, public_base, now)?;
            if let (Confirmed::Joined { person_id, .. }, Some(zone_name)) = (&outcome, zone_name) {
                zone::set_if_unset(conn, *person_id, &zone_name)?;
            }
            Ok::<_, AppError>(outcome)
        })
        .await?;
    Ok(match outcome {
        Confirmed::Joined {
            circle_id, session, ..
        } => {
            // Facilitators' "someone joined" emails are waiting.
            state.wake_jobs();
            let cookie = session_cookie(&session, state.config.public_url_is_https());
            redirect_setting(&format!("/circles/{circle_id}"), cookie)
        }
        Confirmed::Refused(refusal) => refused(&refusal, name),
    })
}
