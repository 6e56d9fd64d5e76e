//! The stylesheet and the one small script, compiled in and served under
//! names that change with their content, so browsers may keep them for a
//! year and still never see a stale one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

const STYLESHEET: &str = include_str!("style.css");
/// Progressive enhancement only: every page works without it.
const SCRIPT: &str = include_str!("page.js");

fn versioned(stem: &str, content: &str, extension: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!("{stem}-{}.{extension}", &hex::encode(digest)[..12])
}

static STYLESHEET_NAME: LazyLock<String> = LazyLock::new(|| versioned("style", STYLESHEET, "css"));
static SCRIPT_NAME: LazyLock<String> = LazyLock::new(|| versioned("page", SCRIPT, "js"));

pub fn stylesheet_path() -> String {
    format!("/static/{}", *STYLESHEET_NAME)
}

pub fn script_path() -> String {
    format!("/static/{}", *SCRIPT_NAME)
}

pub async fn serve_static(Path(name): Path<String>) -> Result<Response, AppError> {
    let (content_type, body) = if name == *STYLESHEET_NAME {
        ("text/css; charset=utf-8", STYLESHEET)
    } else if name == *SCRIPT_NAME {
        ("text/javascript; charset=utf-8", SCRIPT)
    } else {
        return Err(AppError::NotFound);
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response())
}
