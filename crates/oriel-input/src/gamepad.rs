//! Gamepads: the browser's W3C "standard" mapping to an Xbox 360 style
//! evdev device (the layout of the kernel's xpad driver, which games and
//! SDL recognise). Pure mapping; the uinput backend emits the result.

/// evdev event codes used by the virtual pad.
pub mod codes {
    pub const BTN_SOUTH: u16 = 0x130; // A
    pub const BTN_EAST: u16 = 0x131; // B
    pub const BTN_NORTH: u16 = 0x133; // X (BTN_X)
    pub const BTN_WEST: u16 = 0x134; // Y (BTN_Y)
    pub const BTN_TL: u16 = 0x136;
    pub const BTN_TR: u16 = 0x137;
    pub const BTN_SELECT: u16 = 0x13a;
    pub const BTN_START: u16 = 0x13b;
    pub const BTN_MODE: u16 = 0x13c;
    pub const BTN_THUMBL: u16 = 0x13d;
    pub const BTN_THUMBR: u16 = 0x13e;
    pub const ABS_X: u16 = 0x00;
    pub const ABS_Y: u16 = 0x01;
    pub const ABS_Z: u16 = 0x02;
    pub const ABS_RX: u16 = 0x03;
    pub const ABS_RY: u16 = 0x04;
    pub const ABS_RZ: u16 = 0x05;
    pub const ABS_HAT0X: u16 = 0x10;
    pub const ABS_HAT0Y: u16 = 0x11;
}
use codes::*;

/// Vendor/product of the Xbox 360 controller, so games pick the right layout.
pub const VENDOR: u16 = 0x045e;
pub const PRODUCT: u16 = 0x028e;

/// Digital buttons the pad declares.
pub const BUTTONS: &[u16] = &[
    BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST, BTN_TL, BTN_TR, BTN_SELECT, BTN_START, BTN_MODE,
    BTN_THUMBL, BTN_THUMBR,
];

/// Axes the pad declares: `(code, min, max)`.
pub const AXES: &[(u16, i32, i32)] = &[
    (ABS_X, -32768, 32767),
    (ABS_Y, -32768, 32767),
    (ABS_RX, -32768, 32767),
    (ABS_RY, -32768, 32767),
    (ABS_Z, 0, 255),
    (ABS_RZ, 0, 255),
    (ABS_HAT0X, -1, 1),
    (ABS_HAT0Y, -1, 1),
];

/// One evdev event for the pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadEvent {
    Key { code: u16, pressed: bool },
    Abs { code: u16, value: i32 },
}

/// Standard-mapping button count (0..=16).
pub const STANDARD_BUTTONS: u8 = 17;
/// Standard-mapping axis count (0..=3).
pub const STANDARD_AXES: u8 = 4;

/// Tracks the d-pad, whose four buttons become two hat axes.
#[derive(Debug, Default, Clone)]
pub struct PadState {
    dpad: [bool; 4], // up, down, left, right
}

impl PadState {
    /// Maps standard button `index` with `value` (0..=65535, analog for the
    /// triggers) to evdev events. `None` for an index outside the mapping.
    pub fn button(&mut self, index: u8, value: u16) -> Option<PadEvent> {
        let pressed = value >= 32768;
        let key = |code| Some(PadEvent::Key { code, pressed });
        match index {
            0 => key(BTN_SOUTH),
            1 => key(BTN_EAST),
            2 => key(BTN_NORTH),
            3 => key(BTN_WEST),
            4 => key(BTN_TL),
            5 => key(BTN_TR),
            // Triggers are analog: 0..=65535 scaled to the xpad range 0..=255.
            6 => Some(PadEvent::Abs {
                code: ABS_Z,
                value: (value >> 8) as i32,
            }),
            7 => Some(PadEvent::Abs {
                code: ABS_RZ,
                value: (value >> 8) as i32,
            }),
            8 => key(BTN_SELECT),
            9 => key(BTN_START),
            10 => key(BTN_THUMBL),
            11 => key(BTN_THUMBR),
            12..=15 => {
                self.dpad[(index - 12) as usize] = pressed;
                let [up, down, left, right] = self.dpad;
                if index <= 13 {
                    Some(PadEvent::Abs {
                        code: ABS_HAT0Y,
                        value: down as i32 - up as i32,
                    })
                } else {
                    Some(PadEvent::Abs {
                        code: ABS_HAT0X,
                        value: right as i32 - left as i32,
                    })
                }
            }
            16 => key(BTN_MODE),
            _ => None,
        }
    }

    /// Maps standard axis `index` (-32768..=32767; down and right positive,
    /// as in the browser) to an evdev event.
    pub fn axis(&self, index: u8, value: i16) -> Option<PadEvent> {
        let code = match index {
            0 => ABS_X,
            1 => ABS_Y,
            2 => ABS_RX,
            3 => ABS_RY,
            _ => return None,
        };
        Some(PadEvent::Abs {
            code,
            value: value as i32,
        })
    }

    /// Events that return the pad to rest (all released, sticks centred).
    pub fn rest() -> Vec<PadEvent> {
        let mut v: Vec<PadEvent> = BUTTONS
            .iter()
            .map(|&code| PadEvent::Key {
                code,
                pressed: false,
            })
            .collect();
        // Every axis range includes 0: centred sticks, released triggers.
        v.extend(
            AXES.iter()
                .map(|&(code, _, _)| PadEvent::Abs { code, value: 0 }),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_buttons_follow_xbox_layout() {
        let mut p = PadState::default();
        assert_eq!(
            p.button(0, 65535),
            Some(PadEvent::Key {
                code: BTN_SOUTH,
                pressed: true
            })
        );
        assert_eq!(
            p.button(1, 0),
            Some(PadEvent::Key {
                code: BTN_EAST,
                pressed: false
            })
        );
        assert_eq!(
            p.button(2, 65535),
            Some(PadEvent::Key {
                code: BTN_NORTH,
                pressed: true
            })
        );
        assert_eq!(
            p.button(3, 65535),
            Some(PadEvent::Key {
                code: BTN_WEST,
                pressed: true
            })
        );
        assert_eq!(
            p.button(16, 65535),
            Some(PadEvent::Key {
                code: BTN_MODE,
                pressed: true
            })
        );
        assert_eq!(p.button(17, 65535), None);
    }

    #[test]
    fn every_standard_input_maps_into_declared_ranges() {
        let mut p = PadState::default();
        for i in 0..STANDARD_BUTTONS {
            for v in [0u16, 1, 32767, 32768, 65535] {
                match p.button(i, v).expect("mapped") {
                    PadEvent::Key { code, .. } => assert!(BUTTONS.contains(&code), "button {i}"),
                    PadEvent::Abs { code, value } => {
                        let (_, min, max) =
                            AXES.iter().find(|a| a.0 == code).expect("declared axis");
                        assert!(
                            (*min..=*max).contains(&value),
                            "button {i} value {v} -> {value}"
                        );
                    }
                }
            }
        }
        for i in 0..STANDARD_AXES {
            for v in [i16::MIN, -1, 0, 1, i16::MAX] {
                let PadEvent::Abs { code, value } = p.axis(i, v).expect("mapped") else {
                    panic!("axis is abs")
                };
                let (_, min, max) = AXES.iter().find(|a| a.0 == code).expect("declared");
                assert!((*min..=*max).contains(&value));
            }
        }
        assert_eq!(p.axis(4, 0), None);
    }

    #[test]
    fn triggers_are_analog() {
        let mut p = PadState::default();
        assert_eq!(
            p.button(6, 0),
            Some(PadEvent::Abs {
                code: ABS_Z,
                value: 0
            })
        );
        assert_eq!(
            p.button(7, 65535),
            Some(PadEvent::Abs {
                code: ABS_RZ,
                value: 255
            })
        );
        assert_eq!(
            p.button(7, 32768),
            Some(PadEvent::Abs {
                code: ABS_RZ,
                value: 128
            })
        );
    }

    #[test]
    fn dpad_becomes_hat_axes() {
        let mut p = PadState::default();
        assert_eq!(
            p.button(12, 65535),
            Some(PadEvent::Abs {
                code: ABS_HAT0Y,
                value: -1
            })
        );
        // Up and down together cancel out.
        assert_eq!(
            p.button(13, 65535),
            Some(PadEvent::Abs {
                code: ABS_HAT0Y,
                value: 0
            })
        );
        assert_eq!(
            p.button(12, 0),
            Some(PadEvent::Abs {
                code: ABS_HAT0Y,
                value: 1
            })
        );
        assert_eq!(
            p.button(15, 65535),
            Some(PadEvent::Abs {
                code: ABS_HAT0X,
                value: 1
            })
        );
        assert_eq!(
            p.button(14, 65535),
            Some(PadEvent::Abs {
                code: ABS_HAT0X,
                value: 0
            })
        );
    }

    #[test]
    fn rest_releases_everything() {
        let rest = PadState::rest();
        assert!(rest.iter().all(|e| match e {
            PadEvent::Key { pressed, .. } => !pressed,
            PadEvent::Abs { value, .. } => *value == 0,
        }));
        assert_eq!(rest.len(), BUTTONS.len() + AXES.len());
    }
}
