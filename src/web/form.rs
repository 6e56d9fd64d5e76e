//! Form bodies, decoded without ever refusing: a missing field reads as
//! empty, so each handler can answer a bad form with its own page and the
//! person's text kept, instead of a bare 4xx from the extractor.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// Decodes `application/x-www-form-urlencoded`; invalid UTF-8 becomes U+FFFD.
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value named `name`, or "" when there is none.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

impl FormData {
    /// The names of all fields, in order, repeats included.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Every value named `name`, in order (checkboxes sharing a name).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(FormData::parse(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_and_treats_missing_ones_as_empty() {
        let form = FormData::parse(b"email=ada%40example.org&name=Ada+L&email=second");
        assert_eq!(form.get("email"), "ada@example.org");
        assert_eq!(form.get("name"), "Ada L");
        assert_eq!(form.get("missing"), "");
    }

    #[test]
    fn survives_malformed_bodies() {
        let form = FormData::parse(b"%zz=%ff&&=&a");
        assert_eq!(form.get("a"), "");
        assert_eq!(form.get("%zz"), "\u{FFFD}");
    }
}
