//! A virtual X display (Xvfb) started by oriel when no `$DISPLAY` is set, so
//! `oriel serve` works on a headless machine out of the box. It (and the
//! optional session command) stop when this value is dropped, and also when
//! oriel dies, through `PR_SET_PDEATHSIG`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::desktop::child::{die_with_parent, stop};

pub struct VirtualDisplay {
    /// `:N`
    pub name: String,
    size: (u32, u32),
    /// The largest size the pages may make it (`None`: fixed): Xvfb's
    /// screen can never grow past the size it starts with, so it starts
    /// there and is set to `size` at once.
    largest: Option<(u32, u32)>,
    session_cmd: Option<String>,
    /// Extra environment of the session command (its sound server).
    session_env: Vec<(String, String)>,
    xvfb: Child,
    session: Option<Child>,
}

impl VirtualDisplay {
    /// Starts `Xvfb` on a free display number (Xvfb picks it, `-displayfd`),
    /// waits until it accepts connections, then starts `session_cmd` in it
    /// with `session_env` added to its environment.
    pub fn start(
        width: u32,
        height: u32,
        session_cmd: Option<&str>,
        session_env: Vec<(String, String)>,
    ) -> Result<Self> {
        Self::start_resizable(width, height, None, session_cmd, session_env)
    }

    /// As `start`, for a screen that RandR can resize up to `largest`
    /// (`desktop::x11::randr`).
    pub fn start_resizable(
        width: u32,
        height: u32,
        largest: Option<(u32, u32)>,
        session_cmd: Option<&str>,
        session_env: Vec<(String, String)>,
    ) -> Result<Self> {
        let largest = largest.map(|(w, h)| (w.max(width), h.max(height)));
        let (fw, fh) = largest.unwrap_or((width, height));
        let (xvfb, number) = spawn_xvfb(None, fw, fh)?;
        let mut display = VirtualDisplay {
            name: format!(":{number}"),
            size: (width, height),
            largest,
            session_cmd: session_cmd.map(str::to_string),
            session_env,
            xvfb,
            session: None,
        };
        display.take_size()?;
        display.start_session()?;
        Ok(display)
    }

    /// A resizable screen starts at its largest: set to `size` before the
    /// session's programs see it.
    fn take_size(&self) -> Result<()> {
        if self.largest.is_none_or(|l| l == self.size) {
            return Ok(());
        }
        crate::desktop::x11::randr::Randr::open(&self.name)
            .and_then(|r| r.resize(self.size))
            .with_context(|| {
                format!(
                    "setting the virtual display to {}x{}",
                    self.size.0, self.size.1
                )
            })?;
        Ok(())
    }

    /// Xvfb died: starts it again on the same display number (clients and
    /// the capture find it under the same name), and the session command
    /// with it, after stopping what is left of the old session.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut old) = self.session.take() {
            stop(&mut old, true);
        }
        stop(&mut self.xvfb, false);
        let (fw, fh) = self.largest.unwrap_or(self.size);
        let (xvfb, _) = spawn_xvfb(Some(&self.name), fw, fh)?;
        self.xvfb = xvfb;
        self.take_size()?;
        self.start_session()
    }

    fn start_session(&mut self) -> Result<()> {
        if let Some(cmd) = self.session_cmd.clone() {
            self.session = Some(self.spawn_session(&cmd)?);
        }
        Ok(())
    }

    fn spawn_session(&self, session_cmd: &str) -> Result<Child> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", session_cmd])
            .env("DISPLAY", &self.name)
            .env_remove("WAYLAND_DISPLAY")
            .envs(self.session_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        die_with_parent(&mut cmd);
        // Its own process group, so stopping it stops what it started.
        cmd.process_group(0);
        cmd.spawn()
            .with_context(|| format!("could not start session command `{session_cmd}`"))
    }

    /// True while Xvfb runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.xvfb.try_wait(), Ok(None))
    }
}

/// Starts Xvfb on `display`, or on a number it picks, and returns once it
/// accepts connections (it writes its number to `-displayfd` then).
fn spawn_xvfb(display: Option<&str>, width: u32, height: u32) -> Result<(Child, u32)> {
    let mut cmd = Command::new("Xvfb");
    if let Some(display) = display {
        cmd.arg(display);
    }
    cmd.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        &format!("{width}x{height}x24"),
        "-nolisten",
        "tcp",
        // Without -noreset the server resets when its last client leaves.
        "-noreset",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    let mut xvfb = cmd
        .spawn()
        .context("could not start Xvfb (install the `xvfb` package, or set $DISPLAY)")?;

    let stdout = xvfb.stdout.take().context("Xvfb stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(line) => line,
        Err(_) => {
            let _ = xvfb.kill();
            let _ = xvfb.wait();
            bail!("Xvfb did not report a display within 10 s");
        }
    };
    match line.trim().parse() {
        Ok(n) => Ok((xvfb, n)),
        Err(_) => {
            let _ = xvfb.kill();
            let _ = xvfb.wait();
            bail!(
                "Xvfb exited before it was ready (output: {:?})",
                line.trim()
            )
        }
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        if let Some(session) = self.session.as_mut() {
            stop(session, true);
        }
        stop(&mut self.xvfb, false);
        tracing::info!(display = %self.name, "virtual display stopped");
    }
}
