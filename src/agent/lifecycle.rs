//! The agent's life under systemd: ready, watchdog, the stop signal, and
//! what is printed for the person who started it.

use std::net::SocketAddr;

use anyhow::Result;

use crate::session::links::{link_url, Store};
use crate::tls::mode::Decision;

/// Listening and ready: tell systemd (Type=notify), and feed its watchdog
/// from the runtime, so a wedged runtime gets restarted.
pub fn ready() {
    crate::systemd::notify("READY=1");
    if let Some(every) = crate::systemd::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::systemd::notify("WATCHDOG=1");
            }
        });
    }
}

/// With GStreamer's leaks tracer active, SIGUSR1 logs how many GStreamer
/// objects are alive, by type (a `gst-live-objects` line): the churn
/// benchmark's leak check. Without the tracer SIGUSR1 keeps its default.
pub fn log_live_objects_on_sigusr1() {
    use tokio::signal::unix::{signal, SignalKind};
    if !crate::media::leaks::active() {
        return;
    }
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        return;
    };
    tracing::info!("GStreamer leaks tracer active: SIGUSR1 logs the live objects");
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            match tokio::task::spawn_blocking(crate::media::leaks::live_objects).await {
                Ok(Some(counts)) => {
                    tracing::info!("gst-live-objects {}", crate::media::leaks::summary(&counts))
                }
                _ => tracing::warn!("gst-live-objects: the leaks tracer did not answer"),
            }
        }
    });
}

/// A file size limit (`LimitFSIZE=` in the unit, `ulimit -f`) reached by a
/// recording must end that recording, not the agent: SIGXFSZ's default
/// action kills the process. Ignored, the write fails with EFBIG instead,
/// and the recording ends on it like on a full disk.
pub fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler; nothing can run concurrently.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// SIGTERM or Ctrl-C.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// What to print once listening: the address, the certificate, the
/// controller's link (kept out of the journal), the virtual display.
pub struct Announcement<'a> {
    pub addr: SocketAddr,
    pub tls_decision: &'a Decision,
    pub fingerprint: Option<(&'a str, &'a str)>,
    pub public_url: Option<&'a str>,
    pub controller_token: &'a str,
    pub store: &'a Store,
    pub virtual_display: Option<&'a str>,
}

impl Announcement<'_> {
    pub fn print(&self) -> Result<()> {
        let addr = self.addr;
        let scheme = self.tls_decision.scheme();
        if *self.tls_decision == (Decision::Plain { exposed: true }) {
            tracing::warn!(
                "PLAIN HTTP on {addr} (--insecure-http): links, tokens and input cross the network unencrypted, and browsers refuse gamepads and keyboard lock"
            );
        }
        println!("oriel: serving {scheme}://{addr}/");
        if let Some((fingerprint, source)) = self.fingerprint {
            println!("oriel: TLS certificate SHA-256 {fingerprint} ({source})");
        }
        let public = self
            .public_url
            .map(str::to_string)
            .unwrap_or_else(|| default_public_url(scheme, addr));
        let controller_link = link_url(&public, self.controller_token);
        // systemd sets INVOCATION_ID for every unit it runs. Under it stdout
        // is the journal, which keeps lines for weeks and which admins can
        // read, or, where no journald runs, nowhere at all: either way the
        // link goes to a file only the user can read.
        if std::env::var_os("JOURNAL_STREAM").is_some()
            || std::env::var_os("INVOCATION_ID").is_some()
        {
            let path = self
                .store
                .write_private("controller-link", format!("{controller_link}\n").as_bytes())?;
            println!(
                "oriel: controller link in {} (kept out of the log)",
                path.display()
            );
        } else {
            println!("oriel: controller link {controller_link}");
        }
        if let Some(name) = self.virtual_display {
            println!("oriel: virtual display {name}");
        }
        Ok(())
    }
}

/// Where browsers reach us when `--public-url` is not given: the listen
/// address, or this host's name when listening on every interface.
fn default_public_url(scheme: &str, addr: SocketAddr) -> String {
    match crate::tls::cert::hostname() {
        Some(host) if addr.ip().is_unspecified() => format!("{scheme}://{host}:{}/", addr.port()),
        _ => format!("{scheme}://{addr}/"),
    }
}
