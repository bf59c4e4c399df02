//! A virtual X display (Xvfb) started by oriel when no `$DISPLAY` is set, so
//! `oriel serve` works on a headless machine out of the box. It (and the
//! optional session command) stop when this value is dropped, and also when
//! oriel dies, through `PR_SET_PDEATHSIG`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct VirtualDisplay {
    /// `:N`
    pub name: String,
    size: (u32, u32),
    session_cmd: Option<String>,
    xvfb: Child,
    session: Option<Child>,
}

/// Make the child die with us: a crashed agent must not leave displays behind.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

impl VirtualDisplay {
    /// Starts `Xvfb` on a free display number (Xvfb picks it, `-displayfd`),
    /// waits until it accepts connections, then starts `session_cmd` in it.
    pub fn start(width: u32, height: u32, session_cmd: Option<&str>) -> Result<Self> {
        let (xvfb, number) = spawn_xvfb(None, width, height)?;
        let mut display = VirtualDisplay {
            name: format!(":{number}"),
            size: (width, height),
            session_cmd: session_cmd.map(str::to_string),
            xvfb,
            session: None,
        };
        display.start_session()?;
        Ok(display)
    }

    /// Xvfb died: starts it again on the same display number (clients and
    /// the capture find it under the same name), and the session command
    /// with it, after stopping what is left of the old session.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut old) = self.session.take() {
            stop(&mut old, true);
        }
        stop(&mut self.xvfb, false);
        let (xvfb, _) = spawn_xvfb(Some(&self.name), self.size.0, self.size.1)?;
        self.xvfb = xvfb;
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

/// SIGTERM, then SIGKILL after 2 s. A session is stopped as a process
/// group, even when its leader already exited: what it started may not have.
fn stop(child: &mut Child, group: bool) {
    let pid = child.id() as i32;
    let leader_alive = matches!(child.try_wait(), Ok(None));
    // SAFETY: plain kill(2) on a child we own, or on its process group.
    let signal = |sig| unsafe {
        libc::kill(if group { -pid } else { pid }, sig);
    };
    if leader_alive || group {
        signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while leader_alive && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if group {
        signal(libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
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
