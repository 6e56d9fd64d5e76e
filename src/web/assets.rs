//! The stylesheet, compiled in and served under a name that changes with its
//! content, so browsers may keep it for a year and still never see a stale one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

const STYLESHEET: &str = include_str!("style.css");

static STYLESHEET_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLESHEET.as_bytes());
    format!("style-{}.css", &hex::encode(digest)[..12])
});

pub fn stylesheet_path() -> String {
    format!("/static/{}", *STYLESHEET_NAME)
}

pub async fn serve_static(Path(name): Path<String>) -> Result<Response, AppError> {
    if name != *STYLESHEET_NAME {
        return Err(AppError::NotFound);
    }
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        STYLESHEET,
    )
        .into_response())
}
