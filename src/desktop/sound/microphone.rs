//! "oriel microphone": a virtual source on the desktop's sound server that
//! the controller's microphone comes out of, for the desktop's programs to
//! record. A null sink takes what oriel plays into it, and a remap of that
//! sink's monitor is the source programs see; both exist while oriel runs,
//! and the source is the default one only while the microphone is on.
//! Driven through `pactl`, the sound server's own tool, on threads of its
//! own (never a streaming thread's or the runtime's).

use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use super::Server;

/// The sink oriel plays the microphone into.
pub const SINK: &str = "oriel_mic_sink";
/// The source the desktop's programs record from.
pub const SOURCE: &str = "oriel_microphone";

pub struct VirtualMicrophone {
    pub server: Server,
    modules: Vec<u32>,
    /// The default source before ours took over, while it has.
    previous: Arc<Mutex<Option<String>>>,
}

impl VirtualMicrophone {
    /// Creates the sink and the source on `server` (blocks on `pactl`).
    pub fn create(server: &Server) -> Result<Self> {
        let mut mic = VirtualMicrophone {
            server: server.clone(),
            modules: Vec::new(),
            previous: Arc::default(),
        };
        // A new source may become the default by its priority alone (with
        // no default configured, PulseAudio picks the best): keep the one
        // there is until the microphone is on.
        let default = pactl(&server.address, &["get-default-source"])?
            .trim()
            .to_string();
        mic.load(&[
            "module-null-sink",
            &format!("sink_name={SINK}"),
            "rate=48000",
            "channels=1",
            "sink_properties=device.description=oriel-microphone-input",
        ])?;
        mic.load(&[
            "module-remap-source",
            &format!("master={SINK}.monitor"),
            &format!("source_name={SOURCE}"),
            // Quoted for the module's argument parser, and inside that for
            // the property list's.
            "source_properties=\"device.description='oriel microphone'\"",
        ])?;
        if !default.is_empty() {
            pactl(&server.address, &["set-default-source", &default])?;
        }
        tracing::info!(server = %server.address, "virtual microphone `{SOURCE}` (\"oriel microphone\") ready");
        Ok(mic)
    }

    fn load(&mut self, args: &[&str]) -> Result<()> {
        let out = pactl(&self.server.address, &[&["load-module"], args].concat())?;
        let index = out
            .trim()
            .parse()
            .with_context(|| format!("pactl load-module {} printed {out:?}", args[0]))?;
        self.modules.push(index);
        Ok(())
    }

    /// A handle that turns the source on and off as the default one.
    pub fn switch(&self) -> MicSwitch {
        MicSwitch {
            address: self.server.address.clone(),
            previous: self.previous.clone(),
        }
    }
}

/// Makes "oriel microphone" the default source, or gives the default back.
#[derive(Clone)]
pub struct MicSwitch {
    address: String,
    previous: Arc<Mutex<Option<String>>>,
}

impl MicSwitch {
    /// Turns the source on or off as the default, from a thread of its own.
    pub fn set_active(&self, on: bool) {
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("oriel-mic-default".into())
            .spawn(move || {
                if let Err(e) = this.apply(on) {
                    tracing::warn!("switching the default source: {e:#}");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("switching the default source: {e}");
        }
    }

    fn apply(&self, on: bool) -> Result<()> {
        let Ok(mut previous) = self.previous.lock() else {
            bail!("the microphone switch is poisoned");
        };
        if on {
            let now = pactl(&self.address, &["get-default-source"])?
                .trim()
                .to_string();
            if now != SOURCE {
                *previous = Some(now);
            }
            pactl(&self.address, &["set-default-source", SOURCE])?;
            tracing::info!("the controller's microphone is on: `{SOURCE}` is the default source");
        } else if let Some(before) = previous.take() {
            pactl(&self.address, &["set-default-source", &before])?;
            tracing::info!(
                "the controller's microphone is off: `{before}` is the default source again"
            );
        }
        Ok(())
    }
}

impl Drop for VirtualMicrophone {
    fn drop(&mut self) {
        if let Err(e) = self.switch().apply(false) {
            tracing::debug!("giving the default source back: {e:#}");
        }
        for index in self.modules.iter().rev() {
            if let Err(e) = pactl(&self.server.address, &["unload-module", &index.to_string()]) {
                tracing::debug!("unloading module {index}: {e:#}");
            }
        }
    }
}

/// Runs `pactl` against `address`; its stdout, or why it failed.
fn pactl(address: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("pactl")
        .arg(format!("--server={address}"))
        .args(args)
        .output()
        .context("running pactl (package pulseaudio-utils)")?;
    if !out.status.success() {
        bail!(
            "pactl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
