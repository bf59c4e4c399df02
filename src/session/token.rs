//! Capability tokens: `base64url(claims) "." base64url(HMAC-SHA256)`.
//! The claims say role, slot, expiry and link id; the secret never leaves
//! the state directory. Verification is constant-time (hmac's `verify`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::session::roles::Role;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are refused before any work.
pub const MAX_TOKEN_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub link_id: String,
    pub role: Role,
    /// Unix seconds; `None` never expires.
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

impl TokenError {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed token",
            TokenError::BadSignature => "forged or foreign token",
            TokenError::Expired => "expired link",
        }
    }
}

fn encode_claims(c: &Claims) -> String {
    let (role, slot) = match c.role {
        Role::Controller => ("controller", 0),
        Role::Viewer => ("viewer", 0),
        Role::Player { slot } => ("player", slot),
    };
    // 0 on the wire means "never"; an expiry at Unix second 0 is in the past,
    // so it goes out as 1, which every clock has passed (found by fuzzing).
    let exp = match c.expires {
        None => 0,
        Some(e) => e.max(1),
    };
    format!("v1|{}|{role}|{slot}|{exp}", c.link_id)
}

fn decode_claims(s: &str) -> Option<Claims> {
    let mut parts = s.split('|');
    let (Some("v1"), Some(id), Some(role), Some(slot), Some(exp), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let slot: u8 = slot.parse().ok()?;
    let role = match (role, slot) {
        ("controller", 0) => Role::Controller,
        ("viewer", 0) => Role::Viewer,
        ("player", s) if s >= 2 => Role::Player { slot: s },
        _ => return None,
    };
    let exp: u64 = exp.parse().ok()?;
    Some(Claims {
        link_id: id.to_string(),
        role,
        expires: (exp != 0).then_some(exp),
    })
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key size"))
}

pub fn sign(secret: &[u8], claims: &Claims) -> String {
    let body = encode_claims(claims);
    let mut m = mac(secret);
    m.update(body.as_bytes());
    let tag = m.finalize().into_bytes();
    format!("{}.{}", B64.encode(body), B64.encode(tag))
}

/// Checks signature and expiry (`now` in Unix seconds). Revocation is the
/// link store's business.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if body.is_empty() || tag.is_empty() {
        return Err(TokenError::Malformed);
    }
    let body = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(&body);
    m.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
    let body = std::str::from_utf8(&body).map_err(|_| TokenError::Malformed)?;
    let claims = decode_claims(body).ok_or(TokenError::Malformed)?;
    if claims.expires.is_some_and(|e| now >= e) {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(role: Role, expires: Option<u64>) -> Claims {
        Claims {
            link_id: "ab12".into(),
            role,
            expires,
        }
    }

    #[test]
    fn expiry_at_zero_is_expired_not_forever() {
        let t = sign(SECRET, &claims(Role::Viewer, Some(0)));
        assert_eq!(verify(SECRET, &t, 5), Err(TokenError::Expired));
    }

    #[test]
    fn sign_verify_round_trip() {
        for role in [
            Role::Controller,
            Role::Viewer,
            Role::Player { slot: 2 },
            Role::Player { slot: 9 },
        ] {
            let c = claims(role, Some(2_000));
            let t = sign(SECRET, &c);
            assert_eq!(verify(SECRET, &t, 1_000), Ok(c));
        }
        let forever = claims(Role::Viewer, None);
        assert_eq!(
            verify(SECRET, &sign(SECRET, &forever), u64::MAX - 1),
            Ok(forever)
        );
    }

    #[test]
    fn expiry() {
        let t = sign(SECRET, &claims(Role::Viewer, Some(1_000)));
        assert_eq!(verify(SECRET, &t, 999).map(|c| c.role), Ok(Role::Viewer));
        assert_eq!(verify(SECRET, &t, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn forgeries_are_refused() {
        let t = sign(SECRET, &claims(Role::Viewer, None));
        // Another secret.
        assert_eq!(verify(b"other", &t, 0), Err(TokenError::BadSignature));
        // A viewer promoting itself: new claims, old signature.
        let (_, tag) = t.split_once('.').unwrap();
        let forged = format!("{}.{tag}", B64.encode("v1|ab12|controller|0|0"));
        assert_eq!(verify(SECRET, &forged, 0), Err(TokenError::BadSignature));
        // Flipped signature byte.
        let mut bytes = t.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(SECRET, &String::from_utf8(bytes).unwrap(), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for t in ["", ".", "abc", "a.b", "!!!.###", &"x".repeat(1000)] {
            assert_eq!(verify(SECRET, t, 0), Err(TokenError::Malformed), "{t}");
        }
        // Correctly signed but nonsensical claims.
        for body in [
            "v2|a|viewer|0|0",
            "v1|a|player|1|0",
            "v1|a|viewer|3|0",
            "v1||viewer|0|0",
            "v1|a b|viewer|0|0",
            "v1|a|god|0|0",
        ] {
            let mut m = mac(SECRET);
            m.update(body.as_bytes());
            let t = format!(
                "{}.{}",
                B64.encode(body),
                B64.encode(m.finalize().into_bytes())
            );
            assert_eq!(verify(SECRET, &t, 0), Err(TokenError::Malformed), "{body}");
        }
    }
}
