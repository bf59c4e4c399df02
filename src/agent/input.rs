//! Where the clients' input goes: uinput, XTest, the RemoteDesktop portal,
//! a recording file, or nowhere.

use anyhow::{Context, Result};

use crate::config::InputChoice;
use crate::desktop::wayland;
use crate::input::backend::Backend;
use crate::input::service::InputHandle;
use crate::media::capture::Capture;

/// Starts the input backend the user asked for. `auto` prefers uinput
/// (keyboard, mouse, pointer and gamepads, X11 and Wayland alike) and falls
/// back to XTest on the captured X display, saying why.
pub fn start(
    choice: &InputChoice,
    capture: &Capture,
    portal: Option<Box<dyn Backend>>,
) -> Result<Option<InputHandle>> {
    use crate::input::{record::Recorder, service, uinput::Uinput, xtest::XTest};
    let display = match capture {
        Capture::X11 { display } => Some(display.clone()),
        Capture::Test { .. } | Capture::Wayland => None,
    };
    let wayland = matches!(capture, Capture::Wayland);
    let backend: Box<dyn Backend> = match (choice, display) {
        // Decided with the capture (see `wayland_input`).
        _ if portal.is_some() => portal.context("portal input")?,
        (InputChoice::Portal, _) => {
            anyhow::bail!("--input portal needs --capture wayland (or auto in a Wayland session)")
        }
        (InputChoice::None, _) => {
            tracing::info!("input disabled (--input none): clients can only watch");
            return Ok(None);
        }
        (InputChoice::Record(path), _) => Box::new(Recorder::create(path)?),
        (InputChoice::Uinput, _) => Box::new(Uinput::open()?),
        (InputChoice::XTest, Some(display)) => Box::new(XTest::connect(&display)?),
        (InputChoice::XTest, None) if wayland => anyhow::bail!(
            "--input xtest needs X11; on Wayland input goes through uinput (see systemd/60-oriel-uinput.rules)"
        ),
        (InputChoice::XTest, None) => anyhow::bail!("--input xtest needs an X display to capture"),
        (InputChoice::Auto, display) => match Uinput::open() {
            Ok(u) => Box::new(u),
            Err(why) => match display {
                Some(display) => {
                    tracing::info!("{why:#}; using XTest instead (no gamepads)");
                    Box::new(XTest::connect(&display)?)
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
    Ok(Some(service::spawn(backend)?))
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
