//! uinput injection (Linux `/dev/uinput`, through the evdev crate): works
//! the same under X11 and Wayland, and is the only way to offer gamepads.
//! Devices: a keyboard, a relative mouse, an absolute pointer, and one
//! Xbox-layout pad per active slot, created on connect and removed on leave.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, BusType, InputEvent, InputId, KeyCode, PropType,
    RelativeAxisCode, UinputAbsSetup,
};

use crate::backend::{Backend, NotchAccumulator};
use crate::failover::write_error;
use crate::gamepad::{self, PadEvent};
use crate::keymap;
use crate::protocol::MouseButton;

const EV_KEY: u16 = 0x01;
const EV_REL: u16 = 0x02;
const EV_ABS: u16 = 0x03;
const REL_X: u16 = 0x00;
const REL_Y: u16 = 0x01;
const REL_HWHEEL: u16 = 0x06;
const REL_WHEEL: u16 = 0x08;
const REL_WHEEL_HI_RES: u16 = 0x0b;
const REL_HWHEEL_HI_RES: u16 = 0x0c;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const BTN_LEFT: u16 = 0x110;
const BTN_RIGHT: u16 = 0x111;
const BTN_MIDDLE: u16 = 0x112;
const BTN_SIDE: u16 = 0x113;
const BTN_EXTRA: u16 = 0x114;
const BUTTONS: [u16; 5] = [BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA];
const KEY_LEFTSHIFT: u16 = 42;
/// A version number for our devices' input ids.
const VERSION: u16 = 1;

pub const KEYBOARD_NAME: &str = "oriel keyboard";
pub const MOUSE_NAME: &str = "oriel mouse";
pub const POINTER_NAME: &str = "oriel pointer";

/// The name of the pad for `slot`.
pub fn gamepad_name(slot: u8) -> String {
    format!("oriel gamepad {slot}")
}

pub struct Uinput {
    keyboard: VirtualDevice,
    mouse: VirtualDevice,
    pointer: VirtualDevice,
    pads: HashMap<u8, VirtualDevice>,
    wheel_x: NotchAccumulator,
    wheel_y: NotchAccumulator,
}

fn keys(codes: &[u16]) -> AttributeSet<KeyCode> {
    let mut set = AttributeSet::<KeyCode>::new();
    for c in codes {
        set.insert(KeyCode(*c));
    }
    set
}

fn abs(code: u16, min: i32, max: i32) -> UinputAbsSetup {
    // fuzz and flat 0: the browser already quantises, the kernel must not.
    UinputAbsSetup::new(AbsoluteAxisCode(code), AbsInfo::new(0, min, max, 0, 0, 0))
}

fn button_code(b: MouseButton) -> u16 {
    match b {
        MouseButton::Left => BTN_LEFT,
        MouseButton::Middle => BTN_MIDDLE,
        MouseButton::Right => BTN_RIGHT,
        MouseButton::Back => BTN_SIDE,
        MouseButton::Forward => BTN_EXTRA,
    }
}

/// US-layout keys for a character: (evdev key, shift).
fn us_key(c: char) -> Option<(u16, bool)> {
    const UNSHIFTED: &str = "`1234567890-=qwertyuiop[]\\asdfghjkl;'zxcvbnm,./";
    const SHIFTED: &str = "~!@#$%^&*()_+QWERTYUIOP{}|ASDFGHJKL:\"ZXCVBNM<>?";
    const CODES: &[&str] = &[
        "Backquote",
        "Digit1",
        "Digit2",
        "Digit3",
        "Digit4",
        "Digit5",
        "Digit6",
        "Digit7",
        "Digit8",
        "Digit9",
        "Digit0",
        "Minus",
        "Equal",
        "KeyQ",
        "KeyW",
        "KeyE",
        "KeyR",
        "KeyT",
        "KeyY",
        "KeyU",
        "KeyI",
        "KeyO",
        "KeyP",
        "BracketLeft",
        "BracketRight",
        "Backslash",
        "KeyA",
        "KeyS",
        "KeyD",
        "KeyF",
        "KeyG",
        "KeyH",
        "KeyJ",
        "KeyK",
        "KeyL",
        "Semicolon",
        "Quote",
        "KeyZ",
        "KeyX",
        "KeyC",
        "KeyV",
        "KeyB",
        "KeyN",
        "KeyM",
        "Comma",
        "Period",
        "Slash",
    ];
    let code = |i: usize| keymap::evdev_key(CODES[i]);
    match c {
        ' ' => keymap::evdev_key("Space").map(|k| (k, false)),
        '\n' | '\r' => keymap::evdev_key("Enter").map(|k| (k, false)),
        '\t' => keymap::evdev_key("Tab").map(|k| (k, false)),
        _ => {
            if let Some(i) = UNSHIFTED.chars().position(|u| u == c) {
                code(i).map(|k| (k, false))
            } else {
                let i = SHIFTED.chars().position(|u| u == c)?;
                code(i).map(|k| (k, true))
            }
        }
    }
}

impl Uinput {
    /// Creates keyboard, mouse and pointer. Fails clearly when
    /// `/dev/uinput` is missing or not writable.
    pub fn open() -> Result<Self> {
        let writable = std::fs::OpenOptions::new().write(true).open("/dev/uinput");
        if let Err(e) = writable {
            bail!(
                "/dev/uinput is not writable ({e}): install systemd/60-oriel-uinput.rules or run with --input xtest"
            );
        }
        let id = |product| InputId::new(BusType::BUS_VIRTUAL, 0x6f72, product, VERSION);
        let keyboard = VirtualDevice::builder()?
            .name(KEYBOARD_NAME)
            .input_id(id(1))
            .with_keys(&keys(&keymap::all_evdev_keys()))?
            .build()
            .context("creating the uinput keyboard")?;
        let mut rel = AttributeSet::<RelativeAxisCode>::new();
        for r in [
            REL_X,
            REL_Y,
            REL_WHEEL,
            REL_HWHEEL,
            REL_WHEEL_HI_RES,
            REL_HWHEEL_HI_RES,
        ] {
            rel.insert(RelativeAxisCode(r));
        }
        let mouse = VirtualDevice::builder()?
            .name(MOUSE_NAME)
            .input_id(id(2))
            .with_keys(&keys(&BUTTONS))?
            .with_relative_axes(&rel)?
            .build()
            .context("creating the uinput mouse")?;
        let mut props = AttributeSet::<PropType>::new();
        props.insert(PropType::POINTER);
        let pointer = VirtualDevice::builder()?
            .name(POINTER_NAME)
            .input_id(id(3))
            .with_keys(&keys(&BUTTONS))?
            .with_absolute_axis(&abs(ABS_X, 0, 65535))?
            .with_absolute_axis(&abs(ABS_Y, 0, 65535))?
            .with_properties(&props)?
            .build()
            .context("creating the uinput pointer")?;
        Ok(Uinput {
            keyboard,
            mouse,
            pointer,
            pads: HashMap::new(),
            wheel_x: NotchAccumulator::default(),
            wheel_y: NotchAccumulator::default(),
        })
    }
}

fn emit(dev: &mut VirtualDevice, events: &[(u16, u16, i32)]) -> Result<()> {
    let events: Vec<InputEvent> = events
        .iter()
        .map(|(t, c, v)| InputEvent::new(*t, *c, *v))
        .collect();
    // emit() appends the SYN_REPORT that makes the batch one report. A
    // device destroyed under us answers ENODEV/EINVAL: DeviceGone.
    dev.emit(&events)
        .map_err(|e| write_error("uinput write", e))
}

impl Backend for Uinput {
    fn name(&self) -> &'static str {
        "uinput"
    }
    fn gamepads(&self) -> bool {
        true
    }
    fn key(&mut self, key: u16, down: bool) -> Result<()> {
        emit(&mut self.keyboard, &[(EV_KEY, key, down as i32)])
    }
    fn text(&mut self, text: &str) -> Result<()> {
        let mut missing = 0;
        for c in text.chars() {
            let Some((key, shift)) = us_key(c) else {
                missing += 1;
                continue;
            };
            if shift {
                emit(&mut self.keyboard, &[(EV_KEY, KEY_LEFTSHIFT, 1)])?;
            }
            emit(&mut self.keyboard, &[(EV_KEY, key, 1)])?;
            emit(&mut self.keyboard, &[(EV_KEY, key, 0)])?;
            if shift {
                emit(&mut self.keyboard, &[(EV_KEY, KEY_LEFTSHIFT, 0)])?;
            }
        }
        if missing > 0 {
            bail!("{missing} character(s) have no key on a US layout");
        }
        Ok(())
    }
    fn pointer_abs(&mut self, x: u16, y: u16) -> Result<()> {
        emit(
            &mut self.pointer,
            &[(EV_ABS, ABS_X, x as i32), (EV_ABS, ABS_Y, y as i32)],
        )
    }
    fn pointer_rel(&mut self, dx: i16, dy: i16) -> Result<()> {
        emit(
            &mut self.mouse,
            &[(EV_REL, REL_X, dx as i32), (EV_REL, REL_Y, dy as i32)],
        )
    }
    fn button(&mut self, button: MouseButton, down: bool) -> Result<()> {
        emit(
            &mut self.mouse,
            &[(EV_KEY, button_code(button), down as i32)],
        )
    }
    fn wheel(&mut self, dx: i16, dy: i16) -> Result<()> {
        // The protocol's positive dy scrolls down; evdev's REL_WHEEL
        // positive scrolls up.
        let mut events = Vec::new();
        if dy != 0 {
            events.push((EV_REL, REL_WHEEL_HI_RES, -(dy as i32)));
            let notches = self.wheel_y.add(dy);
            if notches != 0 {
                events.push((EV_REL, REL_WHEEL, -notches));
            }
        }
        if dx != 0 {
            events.push((EV_REL, REL_HWHEEL_HI_RES, dx as i32));
            let notches = self.wheel_x.add(dx);
            if notches != 0 {
                events.push((EV_REL, REL_HWHEEL, notches));
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        emit(&mut self.mouse, &events)
    }
    fn gamepad_add(&mut self, slot: u8) -> Result<()> {
        if self.pads.contains_key(&slot) {
            return Ok(());
        }
        let name = gamepad_name(slot);
        let mut builder = VirtualDevice::builder()?
            .name(&name)
            .input_id(InputId::new(
                BusType::BUS_USB,
                gamepad::VENDOR,
                gamepad::PRODUCT,
                VERSION,
            ))
            .with_keys(&keys(gamepad::BUTTONS))?;
        for (code, min, max) in gamepad::AXES {
            builder = builder.with_absolute_axis(&abs(*code, *min, *max))?;
        }
        let pad = builder
            .build()
            .with_context(|| format!("creating uinput gamepad {slot}"))?;
        self.pads.insert(slot, pad);
        Ok(())
    }
    fn gamepad_remove(&mut self, slot: u8) {
        // Dropping the device destroys it; its event node disappears.
        self.pads.remove(&slot);
    }
    fn gamepad(&mut self, slot: u8, event: PadEvent) -> Result<()> {
        let pad = self
            .pads
            .get_mut(&slot)
            .ok_or_else(|| anyhow!("gamepad {slot} is not connected"))?;
        match event {
            PadEvent::Key { code, pressed } => emit(pad, &[(EV_KEY, code, pressed as i32)]),
            PadEvent::Abs { code, value } => emit(pad, &[(EV_ABS, code, value)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::us_key;

    #[test]
    fn us_layout_text() {
        assert_eq!(us_key('a'), Some((30, false)));
        assert_eq!(us_key('A'), Some((30, true)));
        assert_eq!(us_key('!'), Some((2, true)));
        assert_eq!(us_key(' '), Some((57, false)));
        assert_eq!(us_key('é'), None);
    }

    #[test]
    fn open_fails_clearly_without_uinput() {
        if std::path::Path::new("/dev/uinput").exists() {
            return; // a machine with uinput: covered by the VM tests
        }
        let err = super::Uinput::open()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/dev/uinput is not writable"), "{err}");
    }
}
