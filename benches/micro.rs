//! Micro-benchmarks for the functions on hot paths: finding a circle's next
//! round, rendering the round page, and making and checking tokens.
//!
//! These time single functions with realistic inputs; the budgets in
//! DESIGN.md are about whole requests and jobs and are measured by the load
//! benchmark, not here. Run with `cargo bench --bench micro`, on an otherwise
//! idle machine if the numbers are to be compared or published.

use std::hint::black_box;

use chrono::{DateTime, NaiveDate, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoulder::auth::Token;
use shoulder::circles::cadence::{Cadence, parse_time_zone};
use shoulder::rounds::away::AwayPeriod;
use shoulder::rounds::check_in::{CheckInForm, MAX_COMMITMENTS, OpenCommitment, Outcome};
use shoulder::rounds::notes::Note;
use shoulder::rounds::reflections::Shared;
use shoulder::rounds::support::{CircleCommitment, Support};
use shoulder::web::views::rounds::{Drafts, Notice, RoundPage, round};

// ---------------------------------------------------------------------------
// Cadence: the next round after "now".

struct CadenceCase {
    name: &'static str,
    /// As stored in `circles.cadence`.
    canonical: &'static str,
    zone: &'static str,
    now: &'static str,
}

/// Each "now" is just after a round opened, as when the scheduler stores the
/// circle's next round, so weekly searches walk a whole week.
const CADENCE_CASES: [CadenceCase; 5] = [
    CadenceCase {
        name: "weekly Mon 09:00, Toronto",
        canonical: "weekly mon 09:00 every 1 from 2027-03-01",
        zone: "America/Toronto",
        // Monday 22 February 2027, 09:00:01 EST.
        now: "2027-02-22T14:00:01Z",
    },
    CadenceCase {
        name: "weekly Mon 09:00, across spring-forward",
        canonical: "weekly mon 09:00 every 1 from 2027-03-01",
        zone: "America/Toronto",
        // Monday 8 March EST; clocks go forward on Sunday 14 March, so the
        // next round is 09:00 EDT on the 15th.
        now: "2027-03-08T14:00:01Z",
    },
    CadenceCase {
        name: "cron weekdays 09:00 (0 9 * * 1-5), Friday to Monday",
        canonical: "cron 0 9 * * 1-5",
        zone: "America/Toronto",
        // Friday 26 February 2027, 09:00:01 EST.
        now: "2027-02-26T14:00:01Z",
    },
    CadenceCase {
        name: "cron daily 02:30 (30 2 * * *), into the spring-forward gap",
        canonical: "cron 30 2 * * *",
        zone: "America/Toronto",
        // Saturday 13 March 2027, 02:30:01 EST; 02:30 on the 14th does not
        // exist, so the round moves to 03:00 EDT.
        now: "2027-03-13T07:30:01Z",
    },
    CadenceCase {
        name: "monthly 31st 09:00, into February",
        canonical: "monthly 31 09:00",
        zone: "America/Toronto",
        // Sunday 31 January 2027, 09:00:01 EST; next is 28 February.
        now: "2027-01-31T14:00:01Z",
    },
];

fn instant(text: &str) -> DateTime<Utc> {
    text.parse()
        .expect("benchmark instants are RFC 3339 in UTC")
}

fn cadence_next_after(c: &mut Criterion) {
    let mut group = c.benchmark_group("cadence next_after");
    for case in CADENCE_CASES {
        let cadence = Cadence::parse(case.canonical).expect("benchmark cadences are valid");
        let zone = parse_time_zone(case.zone).expect("benchmark zones are IANA names");
        let now = instant(case.now);
        assert!(
            cadence.next_after(zone, now).is_some(),
            "{} fires again after {}",
            case.name,
            case.now
        );
        group.bench_function(case.name, |b| {
            b.iter(|| black_box(&cadence).next_after(black_box(zone), black_box(now)));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// The round page: 8 members, 40 open commitments with their support.

const MEMBERS: [&str; 8] = [
    "Amara Okafor",
    "Ben Tremblay",
    "Chloé Gagnon",
    "Dev Patel",
    "Elif Yılmaz",
    "Farah Haddad",
    "Gus O'Neill",
    "Hana Sato",
];
const VIEWER: usize = 0;
const PARTNER: usize = 1;
const ROUND_NUMBER: i32 = 12;
const CIRCLE_COMMITMENTS: usize = 40;

const COMMITMENT_BODIES: [&str; 10] = [
    "Write 500 words of the grant application before lunch on Wednesday",
    "Call Mum & Dad on Sunday instead of just texting",
    "Ship the <select> fix for the booking form and ask Priya to review it",
    "Go for a run three mornings, even if it's only 20 minutes",
    "Finish chapter 4 of \"Thinking in Systems\" and write down one idea I'd use at work",
    "Book the dentist appointment I've been putting off since January",
    "Spend one evening without my phone in the bedroom",
    "Send the invoice to the Lachance account and follow up on the one from February",
    "Practise the Chopin nocturne for 15 minutes a day, left hand alone first",
    "Ask my manager for a clear yes or no on the conference budget",
];

const SUPPORT_BODIES: [&str; 6] = [
    "You've got this. Happy to read a draft on Tuesday evening if it helps.",
    "That's a big one; proud of you for naming it.",
    "Same here! Want to check in with each other on Thursday?",
    "I did something similar last month: blocking the time in my calendar made all the difference.",
    "Rooting for you 💪",
    "If it slips, that's fine too; telling us is already a step.",
];

fn membership_id(member: usize) -> i64 {
    100 + i64::try_from(member).expect("eight members fit in an i64")
}

/// Everything the page borrows, owned here as the handler's loaded data is.
struct RoundFixture {
    open: Vec<OpenCommitment>,
    form: CheckInForm,
    circle_open: Vec<CircleCommitment>,
    shared: Vec<Shared>,
    notes: Vec<Note>,
    others: Vec<(i64, String)>,
    away: Vec<AwayPeriod>,
    drafts: Drafts,
}

impl RoundFixture {
    fn new() -> RoundFixture {
        // The viewer carries 3 commitments; the other 37 are shared out among
        // the 7 other members. Each has 1 or 2 support messages from others.
        let owners = std::iter::repeat_n(VIEWER, 3)
            .chain((0..CIRCLE_COMMITMENTS - 3).map(|n| 1 + n % (MEMBERS.len() - 1)));
        let mut circle_open: Vec<CircleCommitment> = owners
            .enumerate()
            .map(|(n, owner)| {
                let id = 1001 + i64::try_from(n).expect("forty commitments fit in an i64");
                let support = (0..1 + n % 2)
                    .map(|k| Support {
                        id: id * 10 + i64::try_from(k).expect("small"),
                        author: MEMBERS[(owner + 1 + 3 * k) % MEMBERS.len()].to_string(),
                        body: SUPPORT_BODIES[(n + k) % SUPPORT_BODIES.len()].to_string(),
                        answer: (k == 1).then(|| "Thank you, that helps.".to_string()),
                    })
                    .collect();
                CircleCommitment {
                    id,
                    membership_id: membership_id(owner),
                    name: MEMBERS[owner].to_string(),
                    body: COMMITMENT_BODIES[n % COMMITMENT_BODIES.len()].to_string(),
                    made_in_round: ROUND_NUMBER - [1, 2, 3][n % 3],
                    help_wanted: n % 7 == 4,
                    support,
                }
            })
            .collect();
        // Oldest round first, as `support::open_in_circle` returns them.
        circle_open.sort_by_key(|commitment| (commitment.made_in_round, commitment.id));

        let open: Vec<OpenCommitment> = circle_open
            .iter()
            .filter(|commitment| commitment.membership_id == membership_id(VIEWER))
            .map(|commitment| OpenCommitment {
                id: commitment.id,
                body: commitment.body.clone(),
                made_in_round: commitment.made_in_round,
            })
            .collect();

        let notes = [
            (Outcome::Done, "Sent it Tuesday night, finally."),
            (
                Outcome::Partly,
                "Two runs out of three; the rain won on Friday.",
            ),
            (Outcome::NotYet, ""),
        ];
        let follow = open
            .iter()
            .zip(notes)
            .map(|(commitment, (outcome, note))| {
                (
                    commitment.id.to_string(),
                    (outcome.as_str().to_string(), note.to_string()),
                )
            })
            .collect();
        let commitments: [String; MAX_COMMITMENTS] = [
            "Draft the budget section and send it to Ben by Thursday".to_string(),
            "Two evenings this week with the laptop closed by 21:00".to_string(),
            "Ask the landlord about the heating in writing, not by phone".to_string(),
        ];
        let form = CheckInForm {
            audience: "circle".to_string(),
            reflection: "A slower week than I hoped. The deadline moved, which took the \
                         pressure off, and I noticed I only work on the grant when someone \
                         is waiting for it. Telling this circle helps with exactly that. \
                         Sleep was better after I stopped checking email in bed; I'd like \
                         to keep that going, and to be kinder to myself about the runs."
                .to_string(),
            commitments,
            extra_commitments: Vec::new(),
            follow,
        };

        let away = vec![AwayPeriod {
            id: 31,
            starts_on: date("2027-04-02"),
            ends_on: date("2027-04-11"),
        }];

        // Half the circle shared a reflection; two notes, one answered.
        let shared = (0..MEMBERS.len())
            .step_by(2)
            .map(|member| Shared {
                membership_id: membership_id(member),
                name: MEMBERS[member].to_string(),
                body: SUPPORT_BODIES[member % SUPPORT_BODIES.len()].repeat(3),
            })
            .collect();
        let notes = vec![
            Note {
                id: 1,
                from_id: membership_id(PARTNER),
                from: MEMBERS[PARTNER].to_string(),
                to_id: membership_id(VIEWER),
                to: MEMBERS[VIEWER].to_string(),
                body: SUPPORT_BODIES[0].to_string(),
                answer: None,
            },
            Note {
                id: 2,
                from_id: membership_id(VIEWER),
                from: MEMBERS[VIEWER].to_string(),
                to_id: membership_id(PARTNER),
                to: MEMBERS[PARTNER].to_string(),
                body: SUPPORT_BODIES[1].to_string(),
                answer: Some("Yes, let's talk on Thursday.".to_string()),
            },
        ];
        let others = (0..MEMBERS.len())
            .filter(|&member| member != VIEWER)
            .map(|member| (membership_id(member), MEMBERS[member].to_string()))
            .collect();

        RoundFixture {
            open,
            form,
            circle_open,
            shared,
            notes,
            others,
            away,
            drafts: Drafts::default(),
        }
    }

    /// Signed in, checked in and just saved, paired with a partner.
    fn page(&self) -> RoundPage<'_> {
        RoundPage {
            viewer: MEMBERS[VIEWER],
            key: None,
            circle_id: 7,
            circle_name: "Tuesday Makers",
            membership_id: membership_id(VIEWER),
            number: ROUND_NUMBER,
            question: "What would make this week feel like a good one, looking back on Friday?",
            follow_up: Some("And what is most likely to get in the way?"),
            opened: "Monday 15 March 2027, 09:00 EDT".to_string(),
            closes: "Thursday 18 March 2027, 09:00 EDT".to_string(),
            closed: false,
            open_commitments: &self.open,
            form: &self.form,
            checked_in: true,
            partner: Some((membership_id(PARTNER), MEMBERS[PARTNER])),
            circle_open: &self.circle_open,
            shared: &self.shared,
            notes: &self.notes,
            others: &self.others,
            skipping: false,
            away: &self.away,
            today: date("2027-03-15"),
            drafts: &self.drafts,
            notice: Some(Notice::CheckedIn),
        }
    }
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("benchmark dates are YYYY-MM-DD")
}

fn round_page(c: &mut Criterion) {
    let fixture = RoundFixture::new();
    let page = fixture.page();
    let bytes = round(&page).into_string().len();

    let mut group = c.benchmark_group("round page");
    group.throughput(Throughput::Bytes(
        u64::try_from(bytes).expect("a page's length fits in a u64"),
    ));
    group.bench_function("render, 8 members, 40 commitments", |b| {
        b.iter(|| round(black_box(&page)));
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// Tokens: issuing one, and checking one that came back in a link.

/// A token as it arrives in a link or cookie.
const TOKEN_TEXT: &str = "3f9a0c7e5b1d4a2f8e6c0b9d7a5f3e1c";

fn token(c: &mut Criterion) {
    let mut group = c.benchmark_group("token");
    group.bench_function("generate", |b| b.iter(Token::generate));
    let given = Token::parse(TOKEN_TEXT).expect("the benchmark token is well formed");
    group.bench_function("hash", |b| b.iter(|| black_box(&given).hash()));
    group.bench_function("generate + hash", |b| b.iter(|| Token::generate().hash()));
    group.bench_function("parse + hash", |b| {
        b.iter(|| Token::parse(black_box(TOKEN_TEXT)).map(|token| token.hash()));
    });
    group.finish();
}

criterion_group!(benches, cadence_next_after, round_page, token);
criterion_main!(benches);
