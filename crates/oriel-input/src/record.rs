//! The recording backend: every injected event becomes one JSON line in a
//! file. It stands in for /dev/uinput where the kernel has none, so tests
//! can check exactly what reached which device. A write that fails is a
//! device gone ([`DeviceGone`](crate::failover::DeviceGone)), as a uinput
//! write would be: a file on a full disk stands in for a vanished device.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::backend::Backend;
use crate::failover::write_error;
use crate::gamepad::PadEvent;
use crate::protocol::MouseButton;

pub struct Recorder<W: Write = File> {
    out: BufWriter<W>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Recorder::new(file))
    }
}

impl<W: Write> Recorder<W> {
    /// Records into any writer (tests: one whose writes start failing).
    pub fn new(out: W) -> Self {
        Recorder {
            out: BufWriter::new(out),
        }
    }

    fn write(&mut self, v: serde_json::Value) -> Result<()> {
        // Tests read the file while the agent runs: every line goes out now.
        writeln!(self.out, "{v}")
            .and_then(|()| self.out.flush())
            .map_err(|e| write_error("the recording input sink", e))
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

impl<W: Write + Send> Backend for Recorder<W> {
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
