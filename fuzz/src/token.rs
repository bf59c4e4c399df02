//! Capability tokens: `base64url(claims) "." base64url(HMAC-SHA256)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use oriel::session::roles::Role;
use oriel::session::token::{sign, verify, TokenError, MAX_TOKEN_BYTES};
use sha2::Sha256;

use crate::SECRET;

/// The `now` every token is checked at (Unix seconds).
const NOW: u64 = 1_800_000_000;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As a token off the wire: it cannot carry our signature.
    match verify(SECRET, text, NOW) {
        Ok(claims) => panic!("an unsigned token verified: {claims:?}"),
        Err(e) => assert_ne!(e, TokenError::Expired, "expiry is read after the signature"),
    }
    // As claims text signed with the secret, so the claims parser is reached.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key size");
    mac.update(data);
    let tag = mac.finalize().into_bytes();
    let signed = format!("{}.{}", B64.encode(data), B64.encode(tag));
    let Ok(claims) = verify(SECRET, &signed, NOW) else {
        return;
    };
    assert!(signed.len() <= MAX_TOKEN_BYTES);
    assert!(!claims.link_id.is_empty());
    assert!(claims.link_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    if let Role::Player { slot } = claims.role {
        assert!(slot >= 2, "player slot {slot}");
    }
    assert!(claims.expires.is_none_or(|e| e > NOW));
    // Verified claims re-sign to a token that verifies to the same claims,
    // and to nothing under another secret.
    let again = sign(SECRET, &claims);
    assert_eq!(verify(SECRET, &again, NOW), Ok(claims.clone()));
    assert_eq!(
        verify(b"another secret", &again, NOW),
        Err(TokenError::BadSignature)
    );
}
