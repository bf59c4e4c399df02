//! The recording backend: every injected event becomes one JSON line in a
//! file. It stands in for /dev/uinput where the kernel has none, so tests
//! can check exactly what reached which device.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::backend::Backend;
use crate::gamepad::PadEvent;
use crate::protocol::MouseButton;

pub struct Recorder {
    out: BufWriter<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Recorder {
            out: BufWriter::new(file),
        })
    }

    fn write(&mut self, v: serde_json::Value) -> Result<()> {
        writeln!(self.out, "{v}")?;
        // Tests read the file while the agent runs.
        self.out.flush()?;
        Ok(())
    }
}

fn button_name(b: MouseButton) -> &'static str {
    match b {
        MouseButton::Left => "left",
        MouseButton::Middle => "middle",
        MouseButton::Right => "right",
        MouseButton::Back => "back",
        MouseButton::Forward => "forward",
    }
}

impl Backend for Recorder {
    fn name(&self) -> &'static str {
        "record"
    }
    fn gamepads(&self) -> bool {
        true
    }
    fn key(&mut self, key: u16, down: bool) -> Result<()> {
        self.write(json!({"device": "keyboard", "key": key, "down": down}))
    }
    fn text(&mut self, text: &str) -> Result<()> {
        self.write(json!({"device": "keyboard", "text": text}))
    }
    fn pointer_abs(&mut self, x: u16, y: u16) -> Result<()> {
        self.write(json!({"device": "pointer", "x": x, "y": y}))
    }
    fn pointer_rel(&mut self, dx: i16, dy: i16) -> Result<()> {
        self.write(json!({"device": "mouse", "dx": dx, "dy": dy}))
    }
    fn button(&mut self, button: MouseButton, down: bool) -> Result<()> {
        self.write(json!({"device": "mouse", "button": button_name(button), "down": down}))
    }
    fn wheel(&mut self, dx: i16, dy: i16) -> Result<()> {
        self.write(json!({"device": "mouse", "wheel_dx": dx, "wheel_dy": dy}))
    }
    fn gamepad_add(&mut self, slot: u8) -> Result<()> {
        self.write(json!({"device": format!("gamepad{slot}"), "added": true}))
    }
    fn gamepad_remove(&mut self, slot: u8) {
        let _ = self.write(json!({"device": format!("gamepad{slot}"), "removed": true}));
    }
    fn gamepad(&mut self, slot: u8, event: PadEvent) -> Result<()> {
        let device = format!("gamepad{slot}");
        match event {
            PadEvent::Key { code, pressed } => {
                self.write(json!({"device": device, "key": code, "down": pressed}))
            }
            PadEvent::Abs { code, value } => {
                self.write(json!({"device": device, "abs": code, "value": value}))
            }
        }
    }
}
