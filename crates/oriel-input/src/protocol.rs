//! The input protocol carried on WebRTC data channels: small binary
//! messages with fixed field sizes, little-endian, versioned. Layout of
//! every message (documented for client authors in docs/protocol.md):
//!
//! ```text
//! byte 0   version (1)
//! byte 1   type
//! byte 2.. payload, fixed size per type (Text: u16 length + bytes)
//! ```

/// The input protocol version.
pub const INPUT_VERSION: u8 = 1;

/// Size of the NUL-padded `KeyboardEvent.code` field.
pub const KEY_CODE_BYTES: usize = 32;

/// Longest text message payload, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 1024;

/// A mouse button, numbered like DOM `MouseEvent.button`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    Back,
    Forward,
}

/// One validated input message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputMessage {
    /// A physical key went down (`KeyboardEvent.code`).
    KeyDown(String),
    /// A physical key came up.
    KeyUp(String),
    /// Type this text (IME, paste); layout-independent.
    Text(String),
    /// Absolute pointer position, normalised: 0..=65535 across the stream.
    PointerAbs {
        x: u16,
        y: u16,
    },
    /// Relative pointer motion in pixels (pointer lock).
    PointerRel {
        dx: i16,
        dy: i16,
    },
    ButtonDown(MouseButton),
    ButtonUp(MouseButton),
    /// Wheel in 1/120 of a notch (high resolution), positive = down/right.
    Wheel {
        dx: i16,
        dy: i16,
    },
    /// The client's gamepad appeared.
    GamepadConnect,
    /// The client's gamepad went away.
    GamepadDisconnect,
    /// Standard-mapping button `index` with `value` 0..=65535.
    GamepadButton {
        index: u8,
        value: u16,
    },
    /// Standard-mapping axis `index` with `value` -32768..=32767.
    GamepadAxis {
        index: u8,
        value: i16,
    },
    /// Release everything this client holds down.
    ReleaseAll,
}

/// Message type bytes.
pub mod kind {
    pub const KEY_DOWN: u8 = 0x01;
    pub const KEY_UP: u8 = 0x02;
    pub const TEXT: u8 = 0x03;
    pub const POINTER_ABS: u8 = 0x10;
    pub const POINTER_REL: u8 = 0x11;
    pub const BUTTON_DOWN: u8 = 0x12;
    pub const BUTTON_UP: u8 = 0x13;
    pub const WHEEL: u8 = 0x14;
    pub const GAMEPAD_CONNECT: u8 = 0x20;
    pub const GAMEPAD_DISCONNECT: u8 = 0x21;
    pub const GAMEPAD_BUTTON: u8 = 0x22;
    pub const GAMEPAD_AXIS: u8 = 0x23;
    pub const RELEASE_ALL: u8 = 0x30;
}

/// Why a message was dropped; also the label of its drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeError {
    Empty,
    Version,
    UnknownType,
    Length,
    BadField,
}

impl DecodeError {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Version => "version",
            DecodeError::UnknownType => "unknown_type",
            DecodeError::Length => "length",
            DecodeError::BadField => "bad_field",
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn i16_at(b: &[u8], i: usize) -> i16 {
    i16::from_le_bytes([b[i], b[i + 1]])
}

fn button(b: u8) -> Result<MouseButton, DecodeError> {
    Ok(match b {
        0 => MouseButton::Left,
        1 => MouseButton::Middle,
        2 => MouseButton::Right,
        3 => MouseButton::Back,
        4 => MouseButton::Forward,
        _ => return Err(DecodeError::BadField),
    })
}

fn button_byte(b: MouseButton) -> u8 {
    match b {
        MouseButton::Left => 0,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
        MouseButton::Back => 3,
        MouseButton::Forward => 4,
    }
}

/// A `KeyboardEvent.code`: ASCII letters and digits, NUL-padded.
fn key_code(field: &[u8]) -> Result<String, DecodeError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (code, pad) = field.split_at(end);
    if code.is_empty()
        || !code.iter().all(|b| b.is_ascii_alphanumeric())
        || pad.iter().any(|&b| b != 0)
    {
        return Err(DecodeError::BadField);
    }
    Ok(String::from_utf8_lossy(code).into_owned())
}

/// Decodes one data-channel message.
pub fn decode(b: &[u8]) -> Result<InputMessage, DecodeError> {
    if b.is_empty() {
        return Err(DecodeError::Empty);
    }
    if b[0] != INPUT_VERSION {
        return Err(DecodeError::Version);
    }
    let ty = *b.get(1).ok_or(DecodeError::Length)?;
    let expect = |len: usize| {
        if b.len() == len {
            Ok(())
        } else {
            Err(DecodeError::Length)
        }
    };
    use kind::*;
    Ok(match ty {
        KEY_DOWN | KEY_UP => {
            expect(2 + KEY_CODE_BYTES)?;
            let code = key_code(&b[2..])?;
            if ty == KEY_DOWN {
                InputMessage::KeyDown(code)
            } else {
                InputMessage::KeyUp(code)
            }
        }
        TEXT => {
            if b.len() < 4 {
                return Err(DecodeError::Length);
            }
            let n = u16_at(b, 2) as usize;
            if n == 0 || n > MAX_TEXT_BYTES {
                return Err(DecodeError::BadField);
            }
            expect(4 + n)?;
            let text = std::str::from_utf8(&b[4..]).map_err(|_| DecodeError::BadField)?;
            InputMessage::Text(text.to_string())
        }
        POINTER_ABS => {
            expect(6)?;
            InputMessage::PointerAbs {
                x: u16_at(b, 2),
                y: u16_at(b, 4),
            }
        }
        POINTER_REL => {
            expect(6)?;
            InputMessage::PointerRel {
                dx: i16_at(b, 2),
                dy: i16_at(b, 4),
            }
        }
        BUTTON_DOWN | BUTTON_UP => {
            expect(3)?;
            let btn = button(b[2])?;
            if ty == BUTTON_DOWN {
                InputMessage::ButtonDown(btn)
            } else {
                InputMessage::ButtonUp(btn)
            }
        }
        WHEEL => {
            expect(6)?;
            InputMessage::Wheel {
                dx: i16_at(b, 2),
                dy: i16_at(b, 4),
            }
        }
        GAMEPAD_CONNECT => {
            expect(2)?;
            InputMessage::GamepadConnect
        }
        GAMEPAD_DISCONNECT => {
            expect(2)?;
            InputMessage::GamepadDisconnect
        }
        GAMEPAD_BUTTON => {
            expect(5)?;
            if b[2] >= crate::gamepad::STANDARD_BUTTONS {
                return Err(DecodeError::BadField);
            }
            InputMessage::GamepadButton {
                index: b[2],
                value: u16_at(b, 3),
            }
        }
        GAMEPAD_AXIS => {
            expect(5)?;
            if b[2] >= crate::gamepad::STANDARD_AXES {
                return Err(DecodeError::BadField);
            }
            InputMessage::GamepadAxis {
                index: b[2],
                value: i16_at(b, 3),
            }
        }
        RELEASE_ALL => {
            expect(2)?;
            InputMessage::ReleaseAll
        }
        _ => return Err(DecodeError::UnknownType),
    })
}

/// Encodes a message (used by tests and non-browser clients).
pub fn encode(m: &InputMessage) -> Vec<u8> {
    use kind::*;
    let mut v = vec![INPUT_VERSION];
    let key = |v: &mut Vec<u8>, ty: u8, code: &str| {
        v.push(ty);
        let mut field = [0u8; KEY_CODE_BYTES];
        let n = code.len().min(KEY_CODE_BYTES);
        field[..n].copy_from_slice(&code.as_bytes()[..n]);
        v.extend_from_slice(&field);
    };
    match m {
        InputMessage::KeyDown(c) => key(&mut v, KEY_DOWN, c),
        InputMessage::KeyUp(c) => key(&mut v, KEY_UP, c),
        InputMessage::Text(t) => {
            v.push(TEXT);
            v.extend_from_slice(&(t.len() as u16).to_le_bytes());
            v.extend_from_slice(t.as_bytes());
        }
        InputMessage::PointerAbs { x, y } => {
            v.push(POINTER_ABS);
            v.extend_from_slice(&x.to_le_bytes());
            v.extend_from_slice(&y.to_le_bytes());
        }
        InputMessage::PointerRel { dx, dy } => {
            v.push(POINTER_REL);
            v.extend_from_slice(&dx.to_le_bytes());
            v.extend_from_slice(&dy.to_le_bytes());
        }
        InputMessage::ButtonDown(b) => v.extend_from_slice(&[BUTTON_DOWN, button_byte(*b)]),
        InputMessage::ButtonUp(b) => v.extend_from_slice(&[BUTTON_UP, button_byte(*b)]),
        InputMessage::Wheel { dx, dy } => {
            v.push(WHEEL);
            v.extend_from_slice(&dx.to_le_bytes());
            v.extend_from_slice(&dy.to_le_bytes());
        }
        InputMessage::GamepadConnect => v.push(GAMEPAD_CONNECT),
        InputMessage::GamepadDisconnect => v.push(GAMEPAD_DISCONNECT),
        InputMessage::GamepadButton { index, value } => {
            v.extend_from_slice(&[GAMEPAD_BUTTON, *index]);
            v.extend_from_slice(&value.to_le_bytes());
        }
        InputMessage::GamepadAxis { index, value } => {
            v.extend_from_slice(&[GAMEPAD_AXIS, *index]);
            v.extend_from_slice(&value.to_le_bytes());
        }
        InputMessage::ReleaseAll => v.push(RELEASE_ALL),
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<InputMessage> {
        vec![
            InputMessage::KeyDown("KeyA".into()),
            InputMessage::KeyUp("ShiftLeft".into()),
            InputMessage::Text("héllo, 世界".into()),
            InputMessage::PointerAbs { x: 0, y: 65535 },
            InputMessage::PointerRel { dx: -5, dy: 300 },
            InputMessage::ButtonDown(MouseButton::Left),
            InputMessage::ButtonUp(MouseButton::Forward),
            InputMessage::Wheel { dx: 0, dy: -120 },
            InputMessage::GamepadConnect,
            InputMessage::GamepadDisconnect,
            InputMessage::GamepadButton {
                index: 16,
                value: 65535,
            },
            InputMessage::GamepadAxis {
                index: 3,
                value: i16::MIN,
            },
            InputMessage::ReleaseAll,
        ]
    }

    #[test]
    fn round_trip() {
        for m in samples() {
            assert_eq!(decode(&encode(&m)), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn fixed_sizes() {
        assert_eq!(encode(&InputMessage::KeyDown("KeyA".into())).len(), 34);
        assert_eq!(encode(&InputMessage::PointerAbs { x: 1, y: 2 }).len(), 6);
        assert_eq!(
            encode(&InputMessage::ButtonDown(MouseButton::Left)).len(),
            3
        );
        assert_eq!(
            encode(&InputMessage::GamepadAxis { index: 0, value: 0 }).len(),
            5
        );
        assert_eq!(encode(&InputMessage::ReleaseAll).len(), 2);
    }

    #[test]
    fn rejects_bad_messages() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[2, kind::RELEASE_ALL]), Err(DecodeError::Version));
        assert_eq!(decode(&[1]), Err(DecodeError::Length));
        assert_eq!(decode(&[1, 0x7f]), Err(DecodeError::UnknownType));
        assert_eq!(
            decode(&[1, kind::POINTER_ABS, 0, 0, 0]),
            Err(DecodeError::Length)
        );
        assert_eq!(decode(&[1, kind::RELEASE_ALL, 0]), Err(DecodeError::Length));
        assert_eq!(
            decode(&[1, kind::BUTTON_DOWN, 9]),
            Err(DecodeError::BadField)
        );
        assert_eq!(
            decode(&[1, kind::GAMEPAD_BUTTON, 17, 0, 0]),
            Err(DecodeError::BadField)
        );
        assert_eq!(
            decode(&[1, kind::GAMEPAD_AXIS, 4, 0, 0]),
            Err(DecodeError::BadField)
        );
        // Key codes: ASCII alphanumerics only, NUL-padded, not empty.
        let mut key = encode(&InputMessage::KeyDown("KeyA".into()));
        key[5] = b'!';
        assert_eq!(decode(&key), Err(DecodeError::BadField));
        let mut key = encode(&InputMessage::KeyDown("KeyA".into()));
        key[20] = b'x';
        assert_eq!(decode(&key), Err(DecodeError::BadField));
        let empty = encode(&InputMessage::KeyDown(String::new()));
        assert_eq!(decode(&empty), Err(DecodeError::BadField));
        // Text: length must match and be valid UTF-8.
        assert_eq!(
            decode(&[1, kind::TEXT, 3, 0, b'a']),
            Err(DecodeError::Length)
        );
        assert_eq!(decode(&[1, kind::TEXT, 0, 0]), Err(DecodeError::BadField));
        assert_eq!(
            decode(&[1, kind::TEXT, 1, 0, 0xff]),
            Err(DecodeError::BadField)
        );
        let big = encode(&InputMessage::Text("a".repeat(MAX_TEXT_BYTES + 1)));
        assert_eq!(decode(&big), Err(DecodeError::BadField));
    }

    #[test]
    fn random_bytes_never_panic() {
        // Deterministic xorshift fuzz over short buffers.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut buf = vec![0u8; len];
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (x >> ((i % 8) * 8)) as u8;
            }
            if len > 0 {
                buf[0] = 1;
            }
            let _ = decode(&buf);
        }
    }
}
