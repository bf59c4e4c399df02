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
        let mut cmd = Command::new("Xvfb");
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

        // Xvfb writes the display number once it is ready for clients.
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
                bail!("Xvfb did not report a display within 10 s");
            }
        };
        let number: u32 = match line.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                let _ = xvfb.kill();
                let _ = xvfb.wait();
                bail!(
                    "Xvfb exited before it was ready (output: {:?})",
                    line.trim()
                );
            }
        };
        let name = format!(":{number}");
        let mut display = VirtualDisplay {
            name,
            xvfb,
            session: None,
        };
        if let Some(session_cmd) = session_cmd {
            display.session = Some(display.spawn_session(session_cmd)?);
        }
        Ok(display)
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

fn stop(child: &mut Child, group: bool) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id() as i32;
    // SAFETY: plain kill(2) on a child we own.
    unsafe {
        libc::kill(if group { -pid } else { pid }, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
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
