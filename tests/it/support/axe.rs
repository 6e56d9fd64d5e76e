//! Accessibility checks in the browser tests: axe-core (from `tests/axe`,
//! installed there by `npm install`, which `.ci/run` does) is put into the
//! page and run against WCAG 2.2 A and AA, at a desktop width and at a
//! 390 px phone, which must not scroll sideways either.

use std::path::PathBuf;

use fantoccini::Client;
use serde_json::Value;

/// The widths every page is checked at: a desktop and a phone.
pub const WIDTHS: [(u32, u32); 2] = [(1280, 900), (390, 844)];

/// The rules' tags: WCAG 2.0, 2.1 and 2.2, levels A and AA.
const TAGS: [&str; 6] = [
    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa",
];

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js")
}

/// axe-core's source, or why it is missing. A browser test that must run
/// (`SHOULDER_REQUIRE_BROWSER=1`) fails without it.
pub fn script() -> Option<String> {
    match std::fs::read_to_string(script_path()) {
        Ok(source) => Some(source),
        Err(error) if !super::browser::required() => {
            super::announce_skip(
                "accessibility check",
                &format!("{}: {error}", script_path().display()),
                "Run `npm install` in tests/axe, or SHOULDER_REQUIRE_BROWSER=1 to fail instead.",
            );
            None
        }
        Err(error) => panic!(
            "SHOULDER_REQUIRE_BROWSER=1 but axe-core is missing at {}: {error} (run `npm install` in tests/axe)",
            script_path().display()
        ),
    }
}

/// Every problem on the page as it is now, at each of [`WIDTHS`]: axe's
/// violations (rule, impact, the elements) and sideways scrolling at the
/// phone width. `what` names the page state in the messages.
pub async fn problems(client: &Client, axe: &str, what: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (width, height) in WIDTHS {
        client
            .set_window_size(width, height)
            .await
            .expect("the window can be resized");
        let viewport: Value = client
            .execute("return window.innerWidth;", vec![])
            .await
            .expect("the viewport's width");
        assert!(
            viewport
                .as_u64()
                .is_some_and(|seen| seen <= u64::from(width)),
            "{what}: a window {width} px wide shows {viewport} px"
        );
        client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .expect("axe-core loads in the page");
        let result = client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })\
                    .then(r => done({ passes: r.passes.length, title: document.title, \
                        violations: r.violations.map(v => ({ id: v.id, impact: v.impact, \
                        help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5) })) }))\
                    .catch(e => done({ passes: 0, title: String(e), violations: [] }));",
                vec![serde_json::json!(TAGS)],
            )
            .await
            .expect("axe-core runs");
        // Proof that axe ran: a page passes some rules.
        assert!(
            result["passes"].as_u64().unwrap_or(0) > 0,
            "{what} at {width} px: axe-core did not run: {result}"
        );
        for violation in result["violations"].as_array().cloned().unwrap_or_default() {
            found.push(format!(
                "{what} at {width} px: {} ({}): {} at {}",
                violation["id"].as_str().unwrap_or("?"),
                violation["impact"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or("?"),
                violation["nodes"]
            ));
        }
        let overflow: Value = client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("the page's width");
        if overflow.as_i64().unwrap_or(0) > 0 {
            found.push(format!(
                "{what} at {width} px: scrolls sideways by {overflow} px"
            ));
        }
    }
    client
        .set_window_size(WIDTHS[0].0, WIDTHS[0].1)
        .await
        .expect("the window can be resized");
    found
}
