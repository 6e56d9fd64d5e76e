//! Form bodies, decoded without ever refusing: a missing field reads as
//! empty, so each handler can answer a bad form with its own page and the
//! person's text kept, instead of a bare 4xx from the extractor.
//!
//! Only a body with more fields than any of our forms could send is
//! refused (413), and reading a field costs the same however many were
//! sent: a body of thousands of fields must not cost the server more than
//! its size.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Far more fields than our largest form sends (a check-in with a few
/// dozen open commitments): a body with more is refused before it is
/// decoded.
pub const MAX_FORM_FIELDS: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData {
    fields: Vec<(String, String)>,
    /// Where each name's values stand in `fields`, in order.
    by_name: HashMap<String, Vec<usize>>,
}

impl FormData {
    /// Decodes `application/x-www-form-urlencoded`; invalid UTF-8 becomes U+FFFD.
    pub fn parse(body: &[u8]) -> FormData {
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::with_capacity(fields.len());
        for (at, (name, _)) in fields.iter().enumerate() {
            by_name.entry(name.clone()).or_default().push(at);
        }
        FormData { fields, by_name }
    }

    /// The first value named `name`, or "" when there is none.
    pub fn get(&self, name: &str) -> &str {
        self.by_name
            .get(name)
            .and_then(|at| at.first())
            .map_or("", |&at| self.fields[at].1.as_str())
    }

    /// The names of all fields, in order, repeats included.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// Every value named `name`, in order (checkboxes sharing a name).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.by_name.get(name).map_or_else(Vec::new, |at| {
            at.iter().map(|&at| self.fields[at].1.as_str()).collect()
        })
    }
}

/// How many fields a body holds, counted without decoding any.
fn field_count(body: &[u8]) -> usize {
    body.split(|&b| b == b'&').filter(|f| !f.is_empty()).count()
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = field_count(&body);
        if fields > MAX_FORM_FIELDS {
            tracing::warn!(
                fields,
                limit = MAX_FORM_FIELDS,
                "form with too many fields refused"
            );
            return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response());
        }
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

    #[test]
    fn repeated_names_keep_their_order() {
        let form = FormData::parse(b"day=mon&x=1&day=thu&day=mon");
        assert_eq!(form.all("day"), ["mon", "thu", "mon"]);
        assert_eq!(form.all("none"), Vec::<&str>::new());
        assert_eq!(form.names().count(), 4);
    }

    #[test]
    fn fields_are_counted_as_sent() {
        assert_eq!(field_count(b""), 0);
        assert_eq!(field_count(b"a=1&&b=2&"), 2);
        assert_eq!(field_count(b"a"), 1);
    }
}
