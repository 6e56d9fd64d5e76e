//! The calendar feed and the facilitator's download, read back with the
//! `ical` crate: a parser apart from the library that writes them.

use std::collections::BTreeMap;

use diesel::prelude::*;
use shoulder::circles::settings::{Settings, SettingsForm};
use shoulder::circles::store::{self, CircleStatus};
use shoulder::db::schema::{away_periods, memberships, people};

use crate::on_both_backends;
use crate::shoulder::query;
use crate::support::{TestApp, cookie_from, open_week, utc, weekly_circle};

/// One event as read back: its properties by name.
type ParsedEvent = BTreeMap<String, String>;

/// The events of an iCalendar text, each by UID, as `ical` reads them.
fn parse(text: &str) -> BTreeMap<String, ParsedEvent> {
    let mut calendars = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    let calendar = calendars
        .next()
        .expect("one calendar")
        .unwrap_or_else(|e| panic!("the feed parses: {e}\n{text}"));
    assert!(calendars.next().is_none(), "only one calendar");
    let mut events = BTreeMap::new();
    for event in calendar.events {
        let properties: ParsedEvent = event
            .properties
            .into_iter()
            .map(|p| (p.name, p.value.unwrap_or_default()))
            .collect();
        let uid = properties
            .get("UID")
            .expect("every event has a UID")
            .clone();
        assert!(
            events.insert(uid.clone(), properties).is_none(),
            "{uid} twice"
        );
    }
    events
}

/// The events that are rounds, by their start.
fn round_starts(events: &BTreeMap<String, ParsedEvent>) -> Vec<String> {
    let mut starts: Vec<String> = events
        .iter()
        .filter(|(uid, _)| uid.starts_with("round-"))
        .map(|(_, event)| event["DTSTART"].clone())
        .collect();
    starts.sort();
    starts
}

/// The path of the calendar address shown once on `/me`.
fn feed_path(page: &str, base: &str) -> String {
    let start = page
        .find(&format!("{base}/calendar/"))
        .expect("the address is shown");
    let url = &page[start..];
    let url = &url[..url.find('"').expect("the value ends")];
    url.strip_prefix(base).expect("ours").to_string()
}

/// Makes (or, confirmed, replaces) the person's calendar address as a
/// browser does: the POST redirects to `/me`, which shows the address
/// while the cookie the redirect set lasts, reloads included.
async fn make_feed(app: &TestApp, cookie: &str) -> String {
    let made = app
        .post_form_as(cookie, "/me/calendar", &[("confirm", "yes")])
        .await;
    assert_eq!(made.status().as_u16(), 303);
    assert_eq!(
        made.headers()["location"],
        "/me?saved=calendar#your-calendar"
    );
    let with_key = format!("{cookie}; {}", cookie_from(&made));
    let mut shown = Vec::new();
    for _ in 0..2 {
        let page = app
            .get_as(&with_key, "/me?saved=calendar")
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("Your calendar address is ready."), "{page}");
        shown.push(feed_path(&page, app.public_base()));
    }
    assert_eq!(
        shown[0], shown[1],
        "a reload shows the same address and makes none"
    );
    shown.remove(0)
}

async fn feed(app: &TestApp, path: &str) -> BTreeMap<String, ParsedEvent> {
    let response = app.get(path).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    parse(&response.text().await.expect("text"))
}

on_both_backends! {
    async fn the_feed_lists_each_round_once_and_follows_changes(app) {
        let circle = weekly_circle(&app, "Monday accomplices", &[("ada@example.org", "Ada"), ("bea@example.org", "Bea")]).await;
        open_week(&app, 1).await;
        let bea = app.sign_in("bea@example.org", "Bea").await;
        let me = app.get_as(&bea, "/me").await.text().await.expect("page");
        assert!(me.contains("Make my calendar address"), "{me}");
        assert!(app.get("/calendar/not-a-key.ics").await.status().as_u16() == 404);

        let path = make_feed(&app, &bea).await;
        // Only the key's hash is kept.
        let key = path.trim_start_matches("/calendar/").trim_end_matches(".ics").to_string();
        let stored: Vec<Option<String>> = query(&app, |conn| people::table.select(people::calendar_key_hash).load(conn)).await;
        assert!(stored.iter().flatten().all(|hash| *hash != key) && stored.iter().flatten().count() == 1);

        // Bea is away two days in week 3.
        query(&app, move |conn| {
            let membership: i64 = memberships::table
                .inner_join(people::table)
                .filter(memberships::circle_id.eq(circle))
                .filter(people::email.eq("bea@example.org"))
                .select(memberships::id)
                .first(conn)?;
            diesel::insert_into(away_periods::table)
                .values((
                    away_periods::membership_id.eq(membership),
                    away_periods::starts_on.eq(chrono::NaiveDate::from_ymd_opt(2027, 3, 15).expect("date")),
                    away_periods::ends_on.eq(chrono::NaiveDate::from_ymd_opt(2027, 3, 16).expect("date")),
                    away_periods::created_at.eq(utc("2027-03-01T09:00:00Z").naive_utc()),
                ))
                .execute(conn)
        })
        .await;

        let events = feed(&app, &path).await;
        // Round 1 is open; eight more follow within eight weeks.
        assert_eq!(
            round_starts(&events),
            ["20270301T090000Z", "20270308T090000Z", "20270315T090000Z", "20270322T090000Z", "20270329T090000Z",
             "20270405T090000Z", "20270412T090000Z", "20270419T090000Z", "20270426T090000Z"]
        );
        let open = events.values().find(|e| e["DTSTART"] == "20270301T090000Z").expect("round 1");
        assert_eq!(open["DTEND"], "20270303T090000Z");
        assert_eq!(open["SUMMARY"], "Monday accomplices: round 1");
        assert_eq!(open["SEQUENCE"], "0");
        assert!(open["DESCRIPTION"].contains("This round's prompt: "), "{open:?}");
        assert!(open["DESCRIPTION"].contains(&format!("/circles/{circle}/rounds/1")), "{open:?}");
        let next = events.values().find(|e| e["DTSTART"] == "20270308T090000Z").expect("round 2");
        assert_eq!(next["SUMMARY"], "Monday accomplices: a round");
        let away: Vec<&ParsedEvent> = events.iter().filter(|(uid, _)| uid.starts_with("away-")).map(|(_, e)| e).collect();
        assert_eq!(away.len(), 1);
        assert_eq!((away[0]["DTSTART"].as_str(), away[0]["DTEND"].as_str()), ("20270315", "20270317"), "the last day included");
        assert_eq!(away[0]["SUMMARY"], "Away from Monday accomplices");
        let uids_before: Vec<String> = events.keys().cloned().collect();
        assert_eq!(feed(&app, &path).await.keys().cloned().collect::<Vec<_>>(), uids_before, "stable UIDs");

        // The facilitator's download holds the same rounds, no away days.
        let ada = app.sign_in("ada@example.org", "Ada").await;
        let page = app.get_as(&ada, &format!("/circles/{circle}")).await.text().await.expect("page");
        assert!(page.contains(&format!(r#"href="/circles/{circle}/calendar.ics""#)), "{page}");
        let download = app.get_as(&ada, &format!("/circles/{circle}/calendar.ics")).await;
        assert_eq!(download.status().as_u16(), 200);
        assert!(download.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
        let shared = parse(&download.text().await.expect("text"));
        assert_eq!(shared.keys().cloned().collect::<Vec<_>>(), uids_before.iter().filter(|uid| uid.starts_with("round-")).cloned().collect::<Vec<_>>());
        assert_eq!(app.get_as(&bea, &format!("/circles/{circle}/calendar.ics")).await.status().as_u16(), 404, "facilitators only");

        // The rhythm moves to Wednesdays 18:00: the open round stays, the
        // Mondays go, the Wednesdays come, each a newer version.
        let mut form = SettingsForm::new("UTC");
        form.name = "Monday accomplices".into();
        form.purpose = "Turning what we learn into what we do.".into();
        form.agreements = "We listen first.".into();
        form.round_hours = "48".into();
        form.set_cadence_text("weekly wed 18:00");
        let now = app.clock.now();
        let settings = Settings::parse(&form, now.date_naive()).expect("valid");
        app.state.db.run(move |conn| store::update(conn, circle, &settings, now)).await.expect("updated");
        let events = feed(&app, &path).await;
        assert_eq!(
            round_starts(&events),
            ["20270301T090000Z", "20270303T180000Z", "20270310T180000Z", "20270317T180000Z", "20270324T180000Z",
             "20270331T180000Z", "20270407T180000Z", "20270414T180000Z", "20270421T180000Z"]
        );
        assert!(events.values().all(|e| !e.contains_key("SEQUENCE") || e["SEQUENCE"] == "1"), "{events:?}");
        assert!(events.contains_key(&uids_before.iter().find(|uid| uid.contains("20270301T0900")).expect("round 1").clone()));

        // Paused: only the open round is left.
        app.state.db.run(move |conn| store::set_status(conn, circle, CircleStatus::Paused, now)).await.expect("paused");
        let events = feed(&app, &path).await;
        assert_eq!(round_starts(&events), ["20270301T090000Z"]);
        assert_eq!(events.values().find(|e| e.contains_key("SEQUENCE")).expect("round 1")["SEQUENCE"], "2");

        // A new address ends the old one, once confirmed.
        let asked = app.get_as(&bea, "/me/calendar").await.text().await.expect("page");
        assert!(asked.contains("Replace your calendar address?"), "{asked}");
        let unconfirmed = app.post_form_as(&bea, "/me/calendar", &[]).await;
        assert_eq!(unconfirmed.status().as_u16(), 200);
        assert!(unconfirmed.text().await.expect("page").contains("stop getting your rounds"));
        assert_eq!(app.get(&path).await.status().as_u16(), 200, "unconfirmed, nothing changed");
        let new_path = make_feed(&app, &bea).await;
        assert_ne!(new_path, path);
        assert_eq!(app.get(&path).await.status().as_u16(), 404);
        assert_eq!(feed(&app, &new_path).await.len(), 2);
        let me = app.get_as(&bea, "/me").await.text().await.expect("page");
        assert!(me.contains("You have a calendar address") && !me.contains(&new_path), "shown only once: {me}");
    }
}
