//! Where validated input goes: one trait, one implementation per way of
//! injecting (uinput, XTest, a recording file for tests).

use anyhow::Result;

use crate::gamepad::PadEvent;
use crate::protocol::MouseButton;

pub trait Backend: Send {
    /// Shown in logs, `/metrics` and to clients.
    fn name(&self) -> &'static str;
    /// Whether gamepads can be created at all.
    fn gamepads(&self) -> bool;
    /// A physical key by evdev code.
    fn key(&mut self, key: u16, down: bool) -> Result<()>;
    /// Type text independent of layout.
    fn text(&mut self, text: &str) -> Result<()>;
    /// Absolute pointer, normalised 0..=65535 across the screen.
    fn pointer_abs(&mut self, x: u16, y: u16) -> Result<()>;
    fn pointer_rel(&mut self, dx: i16, dy: i16) -> Result<()>;
    fn button(&mut self, button: MouseButton, down: bool) -> Result<()>;
    /// Wheel in 1/120 notches, positive = down/right.
    fn wheel(&mut self, dx: i16, dy: i16) -> Result<()>;
    fn gamepad_add(&mut self, slot: u8) -> Result<()>;
    fn gamepad_remove(&mut self, slot: u8);
    fn gamepad(&mut self, slot: u8, event: PadEvent) -> Result<()>;
}

/// Splits high-resolution wheel motion into whole notches, keeping the
/// remainder for the next event (X11 buttons 4-7 only know whole clicks).
#[derive(Debug, Default)]
pub struct NotchAccumulator {
    rest: i32,
}

impl NotchAccumulator {
    /// Adds `units` (1/120 notch); returns whole notches, signed.
    pub fn add(&mut self, units: i16) -> i32 {
        self.rest += units as i32;
        let notches = self.rest / 120;
        self.rest -= notches * 120;
        notches
    }
}

#[cfg(test)]
mod tests {
    use super::NotchAccumulator;

    #[test]
    fn notches_accumulate() {
        let mut a = NotchAccumulator::default();
        assert_eq!(a.add(60), 0);
        assert_eq!(a.add(60), 1);
        assert_eq!(a.add(-240), -2);
        assert_eq!(a.add(119), 0);
        assert_eq!(a.add(1), 1);
    }
}
