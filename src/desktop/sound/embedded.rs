//! oriel's own sound server, for its own virtual display: a private
//! PulseAudio with one null sink as the default output, so what runs in the
//! virtual desktop plays into oriel (which records that sink's monitor).
//! Its socket sits in a 0700 directory of ours; it dies with oriel.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Server;
use crate::desktop::child::{die_with_parent, stop};

/// The default sink apps in the virtual desktop play into.
pub const SINK: &str = "oriel_speakers";

pub struct EmbeddedSound {
    pub server: Server,
    child: Child,
    dir: PathBuf,
}

impl EmbeddedSound {
    /// Starts `pulseaudio` and waits until its socket answers.
    pub fn start() -> Result<Self> {
        let program = crate::desktop::child::which("pulseaudio").context(
            "no `pulseaudio` to give the virtual display its sound (install the pulseaudio \
             package, or run with --audio off)",
        )?;
        let dir = private_dir()?;
        let socket = dir.join("native");
        let script = dir.join("default.pa");
        std::fs::write(&script, script_text(&socket))
            .with_context(|| format!("writing {}", script.display()))?;
        let mut cmd = Command::new(&program);
        cmd.args([
            "-n",
            "--daemonize=no",
            "--system=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--realtime=no",
            "--high-priority=no",
            "--log-target=stderr",
            "--log-level=warning",
        ])
        .arg("-F")
        .arg(&script)
        // Its runtime and state files in our directory, apart from any
        // sound server the user runs.
        .env("PULSE_RUNTIME_PATH", &dir)
        .env("PULSE_STATE_PATH", &dir)
        .env("PULSE_COOKIE", dir.join("cookie"))
        .env_remove("PULSE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {program}"))?;
        if let Some(stderr) = child.stderr.take() {
            std::thread::Builder::new()
                .name("oriel-pulse-log".into())
                .spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        tracing::debug!(target: "oriel::sound", "pulseaudio: {line}");
                    }
                })?;
        }
        let mut sound = EmbeddedSound {
            server: Server {
                address: format!("unix:{}", socket.display()),
                found: "oriel's own sound server".into(),
            },
            child,
            dir,
        };
        sound.wait_ready(&socket, Duration::from_secs(10))?;
        tracing::info!(
            server = %sound.server.address,
            "started a sound server for the virtual display (default output `{SINK}`)"
        );
        Ok(sound)
    }

    fn wait_ready(&mut self, socket: &Path, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("pulseaudio exited at start ({status}); run with RUST_LOG=oriel::sound=debug to see why");
            }
            if Instant::now() > deadline {
                bail!(
                    "pulseaudio did not open its socket within {} s",
                    within.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The environment a program needs to play into this server.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![("PULSE_SERVER".into(), self.server.address.clone())]
    }
}

/// The server's whole configuration: a socket only we can reach (the
/// directory is 0700), and a null sink at 48 kHz, the rate Opus takes.
fn script_text(socket: &Path) -> String {
    format!(
        "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
         load-module module-null-sink sink_name={SINK} rate=48000 \
         sink_properties=device.description=oriel-speakers\n\
         set-default-sink {SINK}\n",
        socket.display()
    )
}

/// A fresh 0700 directory in the user's runtime directory (or the temp
/// directory), named by our pid.
fn private_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("oriel-sound-{}", std::process::id()));
    // Left by an earlier process with our pid.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl Drop for EmbeddedSound {
    fn drop(&mut self) {
        stop(&mut self.child, false);
        let _ = std::fs::remove_dir_all(&self.dir);
        tracing::info!("sound server stopped");
    }
}
