//! The control API (`/api/control`): a POST body and the `Authorization`
//! header's bearer token.

use oriel::session::token;
use oriel::signalling::control::{bearer_token, parse_request, Request};
use serde_json::json;

pub fn check(data: &[u8]) {
    if let Ok(req) = parse_request(data) {
        // The request reads back the same from its canonical form.
        let canonical = match &req {
            Request::Publish { target, on } => json!({"publish": {"target": target, "on": on}}),
            Request::Record { on } => json!({"record": {"on": on}}),
        };
        let again = parse_request(canonical.to_string().as_bytes()).expect("canonical request");
        assert_eq!(format!("{again:?}"), format!("{req:?}"));
    }
    // The same bytes as the header's value (warp hands it over as text).
    if let Ok(header) = std::str::from_utf8(data) {
        if let Some(t) = bearer_token(header) {
            assert_eq!(t, t.trim());
            assert!(header.trim_end().ends_with(t));
            if let Ok(claims) = token::verify(crate::SECRET, t, 0) {
                panic!("a token from nowhere verified: {claims:?}");
            }
        }
    }
}
