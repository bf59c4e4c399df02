//! The signalling parser: one WebSocket text frame from a browser.

use oriel_protocol::{parse_client_message, ErrorCode, MAX_MESSAGE_BYTES};

/// Longest error message text beyond what the frame itself holds.
const ERROR_SLACK: usize = 512;

pub fn check(data: &[u8]) {
    // The server hands the parser text frames only (valid UTF-8).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(msg) => {
            // What the agent accepted reads back the same once re-encoded.
            let again = serde_json::to_string(&msg).expect("client messages serialise");
            assert_eq!(parse_client_message(&again), Ok(msg), "re-encoded: {again}");
        }
        Err(e) => {
            if text.len() > MAX_MESSAGE_BYTES {
                assert_eq!(e.code, ErrorCode::TooLarge);
            }
            // The error reply never amplifies what the client sent.
            assert!(
                e.message.len() <= text.len().min(MAX_MESSAGE_BYTES) + ERROR_SLACK,
                "{} byte error for a {} byte frame",
                e.message.len(),
                text.len()
            );
        }
    }
}
