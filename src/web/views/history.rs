//! Follow-through history pages and their chart: stacked bars per round,
//! drawn here as inline SVG, so the page needs no script and no image
//! request. Colours are SVG presentation attributes (`fill=`), which the
//! content security policy allows where inline `style=` is refused.
//!
//! Every number in the chart is also in a plain table for screen readers,
//! and each bar carries its numbers in a `<title>` and in `data-` attributes.
//! The circle's page shows only the circle's figures: no one is ranked.

use maud::{Markup, html};

use super::layout::page_for;
use crate::rounds::check_in::Outcome;
use crate::rounds::history::{CommitmentLine, RoundTally, Tally};

/// Where the bars stand, in SVG user units.
const PLOT_TOP: f64 = 16.0;
const PLOT_HEIGHT: f64 = 160.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 12.0;
const SLOT: f64 = 44.0;
const BAR_WIDTH: f64 = 26.0;
/// Wide enough for the legend.
const MIN_WIDTH: f64 = 420.0;
const LEGEND_STEP: f64 = 96.0;
const INK: &str = "#6b6259";
const LINE: &str = "#d8d0c4";

/// Stacking order, bottom up, with each outcome's fill.
const SERIES: [(Outcome, &str, &str); 4] = [
    (Outcome::Done, "done", "#2f6b5a"),
    (Outcome::Partly, "partly", "#7fb09c"),
    (Outcome::NotYet, "not-yet", "#d6a24a"),
    (Outcome::Release, "released", "#b8b0a4"),
];

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

/// One coloured piece of a bar.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    outcome: Outcome,
    class: &'static str,
    fill: &'static str,
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

/// A bar's pieces, bottom up; outcomes with no reports have none.
fn segments(tally: &Tally, unit: f64) -> Vec<Segment> {
    let mut top = PLOT_TOP + PLOT_HEIGHT;
    SERIES
        .iter()
        .filter(|(outcome, _, _)| tally.count(*outcome) > 0)
        .map(|&(outcome, class, fill)| {
            let height = f64::from(tally.count(outcome)) * unit;
            top -= height;
            Segment {
                outcome,
                class,
                fill,
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
    let count = rounds.len() as f64;
    let width = (LEFT + count * SLOT + RIGHT).max(MIN_WIDTH);
    let baseline = PLOT_TOP + PLOT_HEIGHT;
    let axis_y = baseline + 16.0;
    let caption_y = baseline + 34.0;
    let legend_y = baseline + 50.0;
    let height = legend_y + 20.0;
    let plot_right = LEFT + count * SLOT;
    Some(html! {
        figure.history-chart {
            svg.chart xmlns="http://www.w3.org/2000/svg" role="img"
                viewBox={ "0 0 " (num(width)) " " (num(height)) }
                width=(num(width)) height=(num(height))
                aria-label=(chart_label(label, rounds)) {
                line x1=(num(LEFT)) y1=(num(PLOT_TOP)) x2=(num(plot_right)) y2=(num(PLOT_TOP))
                    stroke=(LINE) stroke-dasharray="3 3" {}
                line x1=(num(LEFT)) y1=(num(baseline)) x2=(num(plot_right)) y2=(num(baseline))
                    stroke=(INK) {}
                text x=(num(LEFT - 6.0)) y=(num(PLOT_TOP + 4.0)) text-anchor="end" font-size="11" fill=(INK) { (tallest) }
                text x=(num(LEFT - 6.0)) y=(num(baseline + 4.0)) text-anchor="end" font-size="11" fill=(INK) { "0" }
                @for (index, round) in rounds.iter().enumerate() {
                    @let x = LEFT + index as f64 * SLOT + (SLOT - BAR_WIDTH) / 2.0;
                    g.bar data-round=(round.number)
                        data-done=(round.tally.done) data-partly=(round.tally.partly)
                        data-not-yet=(round.tally.not_yet) data-released=(round.tally.released) {
                        title { (bar_title(round)) }
                        @for segment in segments(&round.tally, unit) {
                            rect class=(segment.class) x=(num(x)) y=(num(segment.y))
                                width=(num(BAR_WIDTH)) height=(num(segment.height))
                                fill=(segment.fill) data-count=(round.tally.count(segment.outcome)) {}
                        }
                        text x=(num(x + BAR_WIDTH / 2.0)) y=(num(axis_y)) text-anchor="middle" font-size="11" fill=(INK) { (round.number) }
                    }
                }
                text x=(num(LEFT + (plot_right - LEFT) / 2.0)) y=(num(caption_y)) text-anchor="middle" font-size="11" fill=(INK) { "Round" }
                g.legend {
                    @for (index, (outcome, class, fill)) in SERIES.iter().enumerate() {
                        @let x = LEFT + index as f64 * LEGEND_STEP;
                        rect class=(class) x=(num(x)) y=(num(legend_y)) width="12" height="12" fill=(fill) {}
                        text x=(num(x + 17.0)) y=(num(legend_y + 10.5)) font-size="12" fill=(INK) { (outcome_word(*outcome)) }
                    }
                }
            }
        }
        table.sr-only {
            caption { (label) ", by round" }
            thead {
                tr {
                    th scope="col" { "Round" }
                    @for (outcome, _, _) in SERIES { th scope="col" { (outcome_word(outcome)) } }
                }
            }
            tbody {
                @for round in rounds {
                    tr {
                        th scope="row" { (round.number) }
                        @for (outcome, _, _) in SERIES { td { (round.tally.count(outcome)) } }
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
                @for (index, (outcome, _, _)) in SERIES.iter().enumerate() {
                    @if index > 0 { " · " }
                    (outcome_word(*outcome)) " " (total.count(*outcome))
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
            svg.contains(r#"<rect class="done" x="45" y="96" width="26" height="80""#),
            "{svg}"
        );
        assert!(svg.contains(r##"height="40" fill="#d6a24a""##), "{svg}");
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
