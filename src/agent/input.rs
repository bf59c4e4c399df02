//! Where the clients' input goes: uinput, XTest, the RemoteDesktop portal,
//! a recording file, or nowhere.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::InputChoice;
use crate::desktop::wayland;
use crate::input::backend::Backend;
use crate::input::failover::{Failover, Health, Opener};
use crate::input::service::InputHandle;
use crate::media::capture::Capture;

/// Starts the input backend the user asked for. `auto` prefers uinput
/// (keyboard, mouse, pointer and gamepads, X11 and Wayland alike) and falls
/// back to XTest on the captured X display, saying why; and so it does when
/// the uinput devices stop taking input mid-session ([`Failover`]; also for
/// `record:`, the uinput stand-in of the tests). `--input uinput` does not
/// fall back: it says input is off and tries uinput again. The [`Health`]
/// tells what injects now (for new clients, `/metrics`, the controller).
pub fn start(
    choice: &InputChoice,
    capture: &Capture,
    portal: Option<Box<dyn Backend>>,
) -> Result<Option<(InputHandle, Arc<Health>)>> {
    use crate::input::{record::Recorder, service, uinput::Uinput, xtest::XTest};
    let display = match capture {
        Capture::X11 { display } => Some(display.clone()),
        Capture::Test { .. } | Capture::Wayland => None,
    };
    let wayland = matches!(capture, Capture::Wayland);
    let backend: Picked = match (choice, display) {
        // Decided with the capture (see `wayland_input`).
        _ if portal.is_some() => portal.context("portal input")?.into(),
        (InputChoice::Portal, _) => {
            anyhow::bail!("--input portal needs --capture wayland (or auto in a Wayland session)")
        }
        (InputChoice::None, _) => {
            tracing::info!("input disabled (--input none): clients can only watch");
            return Ok(None);
        }
        (InputChoice::Record(path), display) => {
            failover(Box::new(Recorder::create(path)?), display.as_deref(), false)
        }
        (InputChoice::Uinput, _) => failover(Box::new(Uinput::open()?), None, true),
        (InputChoice::XTest, Some(display)) => plain(XTest::connect(&display)?),
        (InputChoice::XTest, None) if wayland => anyhow::bail!(
            "--input xtest needs X11; on Wayland input goes through uinput (see systemd/60-oriel-uinput.rules)"
        ),
        (InputChoice::XTest, None) => anyhow::bail!("--input xtest needs an X display to capture"),
        (InputChoice::Auto, display) => match Uinput::open() {
            Ok(u) => failover(Box::new(u), display.as_deref(), true),
            Err(why) => match display {
                Some(display) => {
                    tracing::info!("{why:#}; using XTest instead (no gamepads)");
                    plain(XTest::connect(&display)?)
                }
                None if wayland => {
                    tracing::warn!(
                        "{why:#}; and the RemoteDesktop portal cannot remember its approval \
                         here: input is off, clients can only watch (--input portal accepts a \
                         dialog at every capture start)"
                    );
                    return Ok(None);
                }
                None => {
                    tracing::warn!(
                        "{why:#}; and no X display: input is off, clients can only watch"
                    );
                    return Ok(None);
                }
            },
        },
    };
    let Picked {
        inner: backend,
        health,
    } = backend;
    tracing::info!(
        backend = backend.name(),
        gamepads = backend.gamepads(),
        "input ready{}",
        if backend.gamepads() {
            ""
        } else {
            " (gamepads unavailable: they need /dev/uinput)"
        }
    );
    let health =
        health.unwrap_or_else(|| Arc::new(Health::new(backend.name(), backend.gamepads())));
    Ok(Some((service::spawn(backend)?, health)))
}

/// A backend, and the health of its failover when it has one.
struct Picked {
    inner: Box<dyn Backend>,
    health: Option<Arc<Health>>,
}

impl From<Box<dyn Backend>> for Picked {
    fn from(inner: Box<dyn Backend>) -> Self {
        Picked {
            inner,
            health: None,
        }
    }
}

/// A backend without failover.
fn plain(b: impl Backend + 'static) -> Picked {
    Picked::from(Box::new(b) as Box<dyn Backend>)
}

/// `primary` wrapped so that losing its devices moves input to XTest on
/// `display` (when there is one), and, with `reopen`, tries uinput again
/// while input is off.
fn failover(primary: Box<dyn Backend>, display: Option<&str>, reopen: bool) -> Picked {
    use crate::input::{uinput::Uinput, xtest::XTest};
    let fallback = display.map(|d| {
        let d = d.to_string();
        let open: Opener = Box::new(move || Ok(Box::new(XTest::connect(&d)?) as Box<dyn Backend>));
        (format!("XTest on {}", display.unwrap_or_default()), open)
    });
    let reopen: Option<Opener> =
        reopen.then(|| Box::new(|| Ok(Box::new(Uinput::open()?) as Box<dyn Backend>)) as Opener);
    let f = Failover::new(primary, fallback, reopen);
    Picked {
        health: Some(f.health()),
        inner: Box::new(f),
    }
}

/// Whether Wayland input goes through the RemoteDesktop portal: asked for
/// (`--input portal`), or `auto` without a writable /dev/uinput when the
/// portal can remember its approval (else every capture start would wait
/// for a dialog, and an unattended agent must not).
pub fn wayland_input(choice: &InputChoice, runtime: &tokio::runtime::Runtime) -> bool {
    match choice {
        InputChoice::Portal => {
            if let Ok(v) = runtime.block_on(wayland::remote_desktop_version()) {
                if v < wayland::REMOTE_PERSIST_VERSION {
                    tracing::warn!(
                        version = v,
                        "this RemoteDesktop portal cannot remember its approval: \
                         every start of the capture asks on the desktop"
                    );
                }
            }
            true
        }
        InputChoice::Auto => {
            if std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/uinput")
                .is_ok()
            {
                return false;
            }
            match runtime.block_on(wayland::remote_desktop_version()) {
                Ok(v) if v >= wayland::REMOTE_PERSIST_VERSION => {
                    tracing::info!(
                        version = v,
                        "/dev/uinput is not writable: input goes through the RemoteDesktop portal"
                    );
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}
