//! The link list (`links.json` in the state directory, written by another
//! process or by hand) and link lifetimes (`--ttl`).

use oriel::session::links::{link_token, parse_links, parse_ttl};
use oriel::session::roles::Role;
use oriel::session::token::verify;

use crate::SECRET;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    ttl(text);
    let Ok(links) = parse_links(text) else {
        return;
    };
    // The list reads back the same once re-written.
    let again = serde_json::json!({ "links": links }).to_string();
    assert_eq!(parse_links(&again).expect("re-written list"), links);
    for link in &links {
        // The token `oriel link list` and `serve` show for a listed link.
        let Some(token) = link_token(SECRET, link) else {
            continue;
        };
        if let Some(end) = link.expires {
            // A token never outlives its link.
            assert!(
                verify(SECRET, &token, end).is_err(),
                "the token of {link:?} is valid at its expiry"
            );
        }
        let Ok(claims) = verify(SECRET, &token, 0) else {
            continue;
        };
        // A token grants exactly what its link says.
        assert_eq!(claims.link_id, link.id);
        assert_eq!(claims.expires, link.expires);
        let (role, slot) = match claims.role {
            Role::Controller => ("controller", None),
            Role::Viewer => ("viewer", None),
            Role::Player { slot } => ("player", Some(slot)),
        };
        assert_eq!((role, slot), (link.role.as_str(), link.slot));
    }
}

/// `parse_ttl`: a lifetime is positive and reads back from `<secs>s`.
fn ttl(text: &str) {
    match parse_ttl(text) {
        Ok(None) => assert_eq!(text.trim(), "never"),
        Ok(Some(secs)) => {
            assert!(secs > 0);
            assert_eq!(parse_ttl(&format!("{secs}s")), Ok(Some(secs)));
        }
        Err(why) => assert!(!why.is_empty()),
    }
}
