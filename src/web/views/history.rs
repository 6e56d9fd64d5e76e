//! Follow-through history pages and their chart: stacked bars per round,
//! drawn here as inline SVG, so the page needs no script and no image
//! request. Colours are SVG presentation attributes (`fill=`), which the
//! content security policy allows where inline `style=` is refused.
//!
//! Colour is never the only way to tell the outcomes apart: each has a
//! texture of its own (solid, stripes, dots, crosshatch), drawn by patterns
//! in the chart's `<defs>` and repeated in the legend, and a white line
//! separates stacked pieces. Every fill has 3:1 or more against the page and
//! against that white. The chart is drawn no wider than a phone's page, so
//! at 390 px it is shown at its own size and its 12-unit text at 12 px.
//!
//! Every number in the chart is also in a plain table for screen readers,
//! and each bar carries its numbers in a `<title>` and in `data-` attributes.
//! The circle's page shows only the circle's figures: no one is ranked.

use maud::{Markup, html};

use super::layout::page_for;
use crate::rounds::check_in::Outcome;
use crate::rounds::history::{CommitmentLine, RoundTally, Tally};

/// The chart's width in SVG user units: the page's width on a 390 px
/// phone (less the page's margins and a scrollbar), so that the chart is
/// never scaled down there.
const CHART_WIDTH: f64 = 330.0;
/// Where the bars stand, in SVG user units.
const PLOT_TOP: f64 = 16.0;
const PLOT_HEIGHT: f64 = 160.0;
const LEFT: f64 = 26.0;
const RIGHT: f64 = 6.0;
/// A round's room at most; with many rounds each gets less, so all fit.
const MAX_SLOT: f64 = 44.0;
/// A bar's share of its round's room.
const BAR_SHARE: f64 = 0.6;
/// The smallest text in the chart, in user units (and so in pixels at a
/// phone's width).
const TEXT_SIZE: &str = "12";
const LEGEND_SWATCH: f64 = 14.0;
const LEGEND_COLUMN: f64 = 150.0;
const LEGEND_ROW: f64 = 22.0;
const INK: &str = "#6b6259";
const LINE: &str = "#d8d0c4";
/// The line between stacked pieces and the marks inside the textures.
const SEPARATOR: &str = "#ffffff";

/// How an outcome's pieces are filled, besides their colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texture {
    Solid,
    Stripes,
    Dots,
    Crosshatch,
}

/// One outcome as the chart draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Series {
    outcome: Outcome,
    class: &'static str,
    colour: &'static str,
    texture: Texture,
}

impl Series {
    /// The `id` of the pattern that fills it, when it is not solid.
    fn pattern_id(&self) -> Option<String> {
        (self.texture != Texture::Solid).then(|| format!("chart-{}", self.class))
    }

    /// What its `fill=` says: the pattern, or the plain colour.
    fn fill(&self) -> String {
        match self.pattern_id() {
            Some(id) => format!("url(#{id})"),
            None => self.colour.to_string(),
        }
    }
}

/// Stacking order, bottom up.
const SERIES: [Series; 4] = [
    Series {
        outcome: Outcome::Done,
        class: "done",
        colour: "#2f6b5a",
        texture: Texture::Solid,
    },
    Series {
        outcome: Outcome::Partly,
        class: "partly",
        colour: "#2b6f8a",
        texture: Texture::Stripes,
    },
    Series {
        outcome: Outcome::NotYet,
        class: "not-yet",
        colour: "#8a5a00",
        texture: Texture::Dots,
    },
    Series {
        outcome: Outcome::Release,
        class: "released",
        colour: "#6b6259",
        texture: Texture::Crosshatch,
    },
];

/// The pattern of a textured series: its colour with white marks, small
/// enough that the colour keeps its contrast with the page.
fn pattern(series: &Series) -> Markup {
    let Some(id) = series.pattern_id() else {
        return html! {};
    };
    html! {
        @match series.texture {
            Texture::Stripes => {
                pattern id=(id) width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="6" height="6" fill=(series.colour) {}
                    rect width="2" height="6" fill=(SEPARATOR) {}
                }
            }
            Texture::Dots => {
                pattern id=(id) width="6" height="6" patternUnits="userSpaceOnUse" {
                    rect width="6" height="6" fill=(series.colour) {}
                    circle cx="3" cy="3" r="1.4" fill=(SEPARATOR) {}
                }
            }
            Texture::Crosshatch => {
                pattern id=(id) width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="7" height="7" fill=(series.colour) {}
                    rect width="1.5" height="7" fill=(SEPARATOR) {}
                    rect width="7" height="1.5" fill=(SEPARATOR) {}
                }
            }
            Texture::Solid => {}
        }
    }
}

/// "Released" in the past tense: the chart reports what happened.
fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Done => "Done",
        Outcome::Partly => "Partly",
        Outcome::NotYet => "Not yet",
        Outcome::Release => "Released",
    }
}

/// A number for an SVG attribute: at most two decimals, no trailing zeros.
fn num(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// One piece of a bar.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    series: Series,
    y: f64,
    height: f64,
}

/// Height per report: the tallest bar fills the plot.
fn unit(rounds: &[RoundTally]) -> f64 {
    let tallest = rounds
        .iter()
        .map(|r| r.tally.reported())
        .max()
        .unwrap_or(0)
        .max(1);
    PLOT_HEIGHT / f64::from(tallest)
}

/// Each round's room: as much as [`MAX_SLOT`], or less so that every
/// round fits in the chart's width.
fn slot(rounds: usize) -> f64 {
    let room = CHART_WIDTH - LEFT - RIGHT;
    MAX_SLOT.min(room / rounds.max(1) as f64)
}

/// A bar's pieces, bottom up; outcomes with no reports have none.
fn segments(tally: &Tally, unit: f64) -> Vec<Segment> {
    let mut top = PLOT_TOP + PLOT_HEIGHT;
    SERIES
        .iter()
        .filter(|series| tally.count(series.outcome) > 0)
        .map(|series| {
            let height = f64::from(tally.count(series.outcome)) * unit;
            top -= height;
            Segment {
                series: *series,
                y: top,
                height,
            }
        })
        .collect()
}

fn bar_title(round: &RoundTally) -> String {
    let t = &round.tally;
    if t.is_empty() {
        return format!("Round {}: nothing reported", round.number);
    }
    format!(
        "Round {}: {} done, {} partly, {} not yet, {} released",
        round.number, t.done, t.partly, t.not_yet, t.released
    )
}

fn chart_label(label: &str, rounds: &[RoundTally]) -> String {
    let mut sum = Tally::default();
    for round in rounds {
        sum.done += round.tally.done;
        sum.partly += round.tally.partly;
        sum.not_yet += round.tally.not_yet;
        sum.released += round.tally.released;
    }
    let span = match (rounds.first(), rounds.last()) {
        (Some(first), Some(last)) if first.number != last.number => {
            format!("rounds {} to {}", first.number, last.number)
        }
        (Some(only), _) => format!("round {}", only.number),
        _ => "no rounds".into(),
    };
    format!(
        "{label}, {span}: {} done, {} partly, {} not yet, {} released.",
        sum.done, sum.partly, sum.not_yet, sum.released
    )
}

/// The stacked bar chart, or `None` when no round has a report (the page
/// says so in words instead).
pub fn chart(label: &str, rounds: &[RoundTally]) -> Option<Markup> {
    if rounds.iter().all(|r| r.tally.is_empty()) {
        return None;
    }
    let unit = unit(rounds);
    let tallest = rounds.iter().map(|r| r.tally.reported()).max().unwrap_or(0);
    let slot = slot(rounds.len());
    let bar_width = slot * BAR_SHARE;
    let baseline = PLOT_TOP + PLOT_HEIGHT;
    let axis_y = baseline + 16.0;
    let caption_y = baseline + 34.0;
    let legend_y = baseline + 46.0;
    let height = legend_y + 2.0 * LEGEND_ROW + 4.0;
    let plot_right = LEFT + rounds.len() as f64 * slot;
    Some(html! {
        figure.history-chart {
            svg.chart xmlns="http://www.w3.org/2000/svg" role="img"
                viewBox={ "0 0 " (num(CHART_WIDTH)) " " (num(height)) }
                width=(num(CHART_WIDTH)) height=(num(height))
                aria-label=(chart_label(label, rounds)) {
                defs {
                    @for series in &SERIES { (pattern(series)) }
                }
                line x1=(num(LEFT)) y1=(num(PLOT_TOP)) x2=(num(plot_right)) y2=(num(PLOT_TOP))
                    stroke=(LINE) stroke-dasharray="3 3" {}
                line x1=(num(LEFT)) y1=(num(baseline)) x2=(num(plot_right)) y2=(num(baseline))
                    stroke=(INK) {}
                text x=(num(LEFT - 4.0)) y=(num(PLOT_TOP + 4.0)) text-anchor="end" font-size=(TEXT_SIZE) fill=(INK) { (tallest) }
                text x=(num(LEFT - 4.0)) y=(num(baseline + 4.0)) text-anchor="end" font-size=(TEXT_SIZE) fill=(INK) { "0" }
                @for (index, round) in rounds.iter().enumerate() {
                    @let x = LEFT + index as f64 * slot + (slot - bar_width) / 2.0;
                    g.bar data-round=(round.number)
                        data-done=(round.tally.done) data-partly=(round.tally.partly)
                        data-not-yet=(round.tally.not_yet) data-released=(round.tally.released) {
                        title { (bar_title(round)) }
                        @for segment in segments(&round.tally, unit) {
                            // The white edge parts a piece from the one on it.
                            rect class=(segment.series.class) x=(num(x)) y=(num(segment.y))
                                width=(num(bar_width)) height=(num(segment.height))
                                fill=(segment.series.fill()) stroke=(SEPARATOR) stroke-width="1.5"
                                data-count=(round.tally.count(segment.series.outcome)) {}
                        }
                        text x=(num(x + bar_width / 2.0)) y=(num(axis_y)) text-anchor="middle" font-size=(TEXT_SIZE) fill=(INK) { (round.number) }
                    }
                }
                text x=(num(LEFT + (plot_right - LEFT) / 2.0)) y=(num(caption_y)) text-anchor="middle" font-size=(TEXT_SIZE) fill=(INK) { "Round" }
                g.legend {
                    @for (index, series) in SERIES.iter().enumerate() {
                        @let x = LEFT + (index % 2) as f64 * LEGEND_COLUMN;
                        @let y = legend_y + (index / 2) as f64 * LEGEND_ROW;
                        rect class=(series.class) x=(num(x)) y=(num(y)) width=(num(LEGEND_SWATCH)) height=(num(LEGEND_SWATCH)) fill=(series.fill()) {}
                        text x=(num(x + LEGEND_SWATCH + 6.0)) y=(num(y + 11.5)) font-size=(TEXT_SIZE) fill=(INK) { (outcome_word(series.outcome)) }
                    }
                }
            }
        }
        table.sr-only {
            caption { (label) ", by round" }
            thead {
                tr {
                    th scope="col" { "Round" }
                    @for series in &SERIES { th scope="col" { (outcome_word(series.outcome)) } }
                }
            }
            tbody {
                @for round in rounds {
                    tr {
                        th scope="row" { (round.number) }
                        @for series in &SERIES { td { (round.tally.count(series.outcome)) } }
                    }
                }
            }
        }
    })
}

fn totals(total: &Tally) -> Markup {
    html! {
        p.summary { (total.summary()) }
        @if !total.is_empty() {
            p.muted.breakdown {
                @for (index, series) in SERIES.iter().enumerate() {
                    @if index > 0 { " · " }
                    (outcome_word(series.outcome)) " " (total.count(series.outcome))
                }
            }
            p.muted {
                "Each commitment counts once in these totals, by how it last stood. "
                "The chart shows what was reported in each round, so a commitment "
                "carried with \u{201c}not yet\u{201d} appears in each round it was reported. "
                "Releasing a commitment is an honest choice and is never counted as a miss."
            }
        }
    }
}

pub struct CircleHistoryPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    pub rounds: &'a [RoundTally],
    pub total: &'a Tally,
}

pub fn circle_history(page: &CircleHistoryPage<'_>) -> Markup {
    let title = format!("{}: follow-through", page.circle_name);
    page_for(
        page.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (page.circle_id) } { "← " (page.circle_name) } }
            h1 { "How the circle is following through" }
            (totals(page.total))
            @match chart("The circle's follow-through", page.rounds) {
                Some(chart) => (chart),
                None => p.empty-history {
                    "No follow-through has been reported yet. When members say how their "
                    "commitments went, in the round after they made them, the circle's "
                    "chart will appear here."
                },
            }
            p.muted {
                "These are the circle's figures together. Each member's own history is "
                "linked beside their name on the circle page; nobody is ranked."
            }
        },
    )
}

pub struct MemberHistoryPage<'a> {
    pub viewer: &'a str,
    pub circle_id: i64,
    pub circle_name: &'a str,
    pub member_name: &'a str,
    pub is_viewer: bool,
    pub rounds: &'a [RoundTally],
    pub total: &'a Tally,
    pub commitments: &'a [CommitmentLine],
}

fn status_label(status: Option<Outcome>) -> &'static str {
    match status {
        None => "waiting for a report",
        Some(Outcome::Done) => "done",
        Some(Outcome::Partly) => "partly done",
        Some(Outcome::NotYet) => "not yet, carried forward",
        Some(Outcome::Release) => "released",
    }
}

pub fn member_history(page: &MemberHistoryPage<'_>) -> Markup {
    let (heading, label) = if page.is_viewer {
        (
            "Your follow-through".to_string(),
            "Your follow-through".to_string(),
        )
    } else {
        (
            format!("{}'s follow-through", page.member_name),
            format!("{}'s follow-through", page.member_name),
        )
    };
    let title = format!("{heading} · {}", page.circle_name);
    page_for(
        page.viewer,
        &title,
        html! {
            p.muted { a href={ "/circles/" (page.circle_id) } { "← " (page.circle_name) } }
            h1 { (heading) }
            (totals(page.total))
            @match chart(&label, page.rounds) {
                Some(chart) => (chart),
                None => p.empty-history {
                    @if page.is_viewer {
                        "Nothing reported yet. In the round after you make a commitment, "
                        "you can say how it went, and it will show here."
                    } @else {
                        "Nothing reported yet. When " (page.member_name) " says how a "
                        "commitment went, it will show here."
                    }
                },
            }
            section.commitments {
                h2 { "Commitments" }
                @if page.commitments.is_empty() {
                    p.muted { "No commitments made yet." }
                } @else {
                    @for (made_in, group) in by_round(page.commitments) {
                        h3 { "Made in round " (made_in) }
                        ul.commitment-history {
                            @for line in group {
                                li data-commitment=(line.id) {
                                    (line.body)
                                    " " span.role data-status=(line.status.map_or("open", Outcome::as_str)) { (status_label(line.status)) }
                                    @if line.help_wanted { " " span.muted { "(asked for help)" } }
                                    @if !line.reports.is_empty() {
                                        ul.reports {
                                            @for report in &line.reports {
                                                li {
                                                    "Round " (report.round) ": " (outcome_word(report.outcome))
                                                    @if let Some(note) = &report.note { ". " q { (note) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Consecutive commitments made in the same round, in the order given.
fn by_round(lines: &[CommitmentLine]) -> Vec<(i32, &[CommitmentLine])> {
    lines
        .chunk_by(|a, b| a.made_in_round == b.made_in_round)
        .filter_map(|group| group.first().map(|first| (first.made_in_round, group)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(number: i32, done: u32, partly: u32, not_yet: u32, released: u32) -> RoundTally {
        RoundTally {
            number,
            tally: Tally {
                done,
                partly,
                not_yet,
                released,
            },
        }
    }

    #[test]
    fn bar_heights_are_proportional_to_the_counts() {
        let rounds = [round(2, 2, 0, 0, 0), round(3, 1, 1, 1, 1)];
        let unit = unit(&rounds);
        assert_eq!(unit, PLOT_HEIGHT / 4.0, "the tallest bar fills the plot");
        let short = segments(&rounds[0].tally, unit);
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].height, PLOT_HEIGHT / 2.0);
        let tall = segments(&rounds[1].tally, unit);
        let heights: Vec<f64> = tall.iter().map(|s| s.height).collect();
        assert_eq!(heights, [40.0, 40.0, 40.0, 40.0]);
        // Stacked from the baseline up, with no gaps, to the top of the plot.
        assert_eq!(tall[0].y + tall[0].height, PLOT_TOP + PLOT_HEIGHT);
        for pair in tall.windows(2) {
            assert_eq!(pair[1].y + pair[1].height, pair[0].y);
        }
        assert_eq!(tall[3].y, PLOT_TOP);

        let svg = chart("Yours", &rounds).expect("a chart").into_string();
        assert!(
            svg.contains(
                r##"<rect class="done" x="34.8" y="96" width="26.4" height="80" fill="#2f6b5a""##
            ),
            "{svg}"
        );
        assert!(
            svg.contains(r##"height="40" fill="url(#chart-not-yet)""##),
            "{svg}"
        );
    }

    /// Every value of `attribute` in `svg`, in order.
    fn values<'a>(svg: &'a str, attribute: &str) -> Vec<&'a str> {
        let needle = format!(" {attribute}=\"");
        svg.split(needle.as_str())
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    /// The `fill` of the first `<rect>` of `class` in `svg`.
    fn fill_of<'a>(svg: &'a str, class: &str) -> &'a str {
        let rect = svg
            .split("<rect")
            .find(|rect| rect.starts_with(&format!(" class=\"{class}\"")))
            .unwrap_or_else(|| panic!("a {class} piece in {svg}"));
        values(rect, "fill")[0]
    }

    #[test]
    fn each_texture_a_piece_is_filled_with_is_defined_in_the_chart() {
        let svg = chart("Yours", &[round(2, 1, 1, 1, 1)])
            .expect("a chart")
            .into_string();
        let (defs, drawn) = svg.split_once("</defs>").expect("the chart's definitions");
        let patterns = values(defs, "id");
        assert_eq!(
            patterns,
            ["chart-partly", "chart-not-yet", "chart-released"],
            "one texture per outcome besides the solid one: {defs}"
        );
        let used: Vec<&str> = values(drawn, "fill")
            .into_iter()
            .filter_map(|fill| fill.strip_prefix("url(#"))
            .map(|fill| fill.trim_end_matches(')'))
            .collect();
        assert_eq!(used.len(), 6, "three bar pieces, three swatches: {svg}");
        for id in used {
            assert!(patterns.contains(&id), "{id} is defined: {defs}");
        }
        assert_eq!(fill_of(drawn, "done"), "#2f6b5a", "Done is solid");
    }

    #[test]
    fn the_legend_shows_each_outcome_with_the_fill_of_its_pieces() {
        let svg = chart("Yours", &[round(2, 1, 1, 1, 1)])
            .expect("a chart")
            .into_string();
        let (bars, legend) = svg.split_once(r#"<g class="legend">"#).expect("a legend");
        for series in SERIES {
            assert_eq!(
                fill_of(legend, series.class),
                fill_of(bars, series.class),
                "{}",
                series.class
            );
            assert!(legend.contains(outcome_word(series.outcome)), "{legend}");
        }
        let fills: Vec<&str> = SERIES.iter().map(|s| fill_of(legend, s.class)).collect();
        for (index, fill) in fills.iter().enumerate() {
            assert!(!fills[index + 1..].contains(fill), "{fills:?}");
        }
    }

    #[test]
    fn stacked_pieces_are_parted_by_a_white_line() {
        let svg = chart("Yours", &[round(2, 1, 1, 1, 1)])
            .expect("a chart")
            .into_string();
        let pieces: Vec<&str> = svg
            .split("<rect")
            .filter(|rect| rect.contains("data-count"))
            .collect();
        assert_eq!(pieces.len(), 4);
        for piece in pieces {
            assert!(
                piece.contains(r##"stroke="#ffffff" stroke-width="1.5""##),
                "{piece}"
            );
        }
    }

    /// WCAG's contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |at: usize| {
                let value =
                    f64::from(u8::from_str_radix(&hex[at..at + 2], 16).expect("a hex colour"))
                        / 255.0;
                if value <= 0.039_28 {
                    value / 12.92
                } else {
                    ((value + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    #[test]
    fn every_piece_has_3_to_1_against_the_page_and_the_white_between_them() {
        // The page's --paper in style.css.
        let paper = "#fbf9f5";
        for series in SERIES {
            for against in [paper, SEPARATOR] {
                let ratio = contrast(series.colour, against);
                assert!(ratio >= 3.0, "{} on {against}: {ratio:.2}", series.class);
            }
        }
        assert!(contrast(INK, paper) >= 4.5, "the chart's text");
        assert!(contrast(LINE, paper) < 3.0, "the top line is a guide only");
    }

    #[test]
    fn text_is_12_px_or_more_on_a_390_px_phone() {
        let twelve: Vec<RoundTally> = (1..=12).map(|n| round(n, 3, 2, 1, 1)).collect();
        let svg = chart("Yours", &twelve).expect("a chart").into_string();
        let sizes = values(&svg, "font-size");
        assert!(sizes.len() > 12, "{svg}");
        for size in sizes {
            assert!(size.parse::<f64>().expect("a number") >= 12.0, "{size}");
        }
        // The page is 390 px less 2 × 1.25rem of 17 px and a scrollbar: at
        // this width or less the chart is drawn 1:1, never scaled down.
        let phone_page = 390.0 - 2.0 * 1.25 * 17.0 - 15.0;
        assert!(CHART_WIDTH <= phone_page);
        assert_eq!(values(&svg, "width")[0], "330", "{svg}");
        assert!(svg.contains(r#"viewBox="0 0 330 "#), "{svg}");
        // Twelve rounds fit in that width.
        let last = twelve.len() as f64 * slot(twelve.len()) + LEFT;
        assert!(last <= CHART_WIDTH - RIGHT, "{last}");
        assert!(slot(12) * BAR_SHARE >= 12.0, "bars stay wide enough to see");
        assert_eq!(slot(2), MAX_SLOT, "a few rounds keep their room");
    }

    #[test]
    fn each_bar_carries_its_numbers() {
        let svg = chart("Yours", &[round(2, 1, 0, 2, 1)])
            .expect("a chart")
            .into_string();
        assert!(svg.contains(
            r#"<g class="bar" data-round="2" data-done="1" data-partly="0" data-not-yet="2" data-released="1">"#
        ), "{svg}");
        assert!(svg.contains("<title>Round 2: 1 done, 0 partly, 2 not yet, 1 released</title>"));
        assert!(svg.contains(r#"role="img""#));
        assert!(
            svg.contains(
                r#"aria-label="Yours, round 2: 1 done, 0 partly, 2 not yet, 1 released.""#
            ),
            "{svg}"
        );
        assert!(!svg.contains("style="), "the CSP refuses inline styles");
        assert!(svg.contains(r#"<table class="sr-only">"#));
        assert!(
            svg.contains("<th scope=\"row\">2</th><td>1</td><td>0</td><td>2</td><td>1</td>"),
            "{svg}"
        );
    }

    #[test]
    fn rounds_without_reports_keep_their_place_without_a_bar() {
        let svg = chart("Yours", &[round(2, 1, 0, 0, 0), round(3, 0, 0, 0, 0)])
            .expect("a chart")
            .into_string();
        assert!(svg.contains("<title>Round 3: nothing reported</title>"));
        assert_eq!(
            svg.matches("<rect class=\"done\" x=").count(),
            2,
            "one bar, one legend swatch"
        );
    }

    #[test]
    fn no_reports_means_no_chart() {
        assert!(chart("Yours", &[]).is_none());
        assert!(chart("Yours", &[round(1, 0, 0, 0, 0)]).is_none());
    }

    #[test]
    fn names_in_the_chart_are_escaped() {
        let svg = chart(r#"<script>"Eve" & co</script>"#, &[round(2, 1, 0, 0, 0)])
            .expect("a chart")
            .into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;&quot;Eve&quot; &amp; co&lt;/script&gt;"),
            "{svg}"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(80.0), "80");
        assert_eq!(num(53.333_333), "53.33");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(0.0), "0");
    }
}
