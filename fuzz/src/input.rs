//! The input data channels' binary framing, and the pure steps between a
//! decoded message and the injection backend.

use oriel_input::gamepad::{PadState, STANDARD_AXES, STANDARD_BUTTONS};
use oriel_input::keymap;
use oriel_input::protocol::{decode, encode, InputMessage, KEY_CODE_BYTES, MAX_TEXT_BYTES};
use oriel_input::roles::{allowed, Role};

pub fn check(data: &[u8]) {
    let Ok(msg) = decode(data) else {
        return;
    };
    // Fixed layouts: a decoded message is exactly the bytes it came from.
    assert_eq!(encode(&msg), data, "{msg:?}");
    match &msg {
        InputMessage::KeyDown(code) | InputMessage::KeyUp(code) => {
            assert!(!code.is_empty() && code.len() <= KEY_CODE_BYTES);
            let _ = keymap::evdev_key(code);
        }
        InputMessage::Text(t) => assert!(!t.is_empty() && t.len() <= MAX_TEXT_BYTES),
        InputMessage::GamepadButton { index, value } => {
            assert!(*index < STANDARD_BUTTONS);
            assert!(PadState::default().button(*index, *value).is_some());
        }
        InputMessage::GamepadAxis { index, value } => {
            assert!(*index < STANDARD_AXES);
            assert!(PadState::default().axis(*index, *value).is_some());
        }
        _ => {}
    }
    // A viewer never injects; the controller always may.
    assert!(allowed(Role::Viewer, &msg).is_err());
    assert!(allowed(Role::Controller, &msg).is_ok());
    let _ = allowed(Role::Player { slot: 2 }, &msg);
}
