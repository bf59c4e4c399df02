//! The desktop `serve` shares: an existing X display, a Wayland session
//! through the ScreenCast portal, or oriel's own virtual display (Xvfb).

use std::sync::Arc;

use anyhow::Result;

use crate::config::{ResizeMode, ServeArgs};
use crate::desktop::sound::microphone::VirtualMicrophone;
use crate::desktop::sound::{self, embedded::EmbeddedSound, AudioChoice};
use crate::desktop::supervisor::Supervisor;
use crate::desktop::wayland;
use crate::desktop::xvfb::VirtualDisplay;
use crate::input::backend::Backend;
use crate::media::capture::{self, Capture, Plan};
use crate::media::service::LiveSource;

/// What was found or started, before the media service exists.
pub struct Desktop {
    pub capture: Capture,
    /// Ours, when there was no display to share.
    pub virtual_display: Option<VirtualDisplay>,
    /// Wayland: the portal, which opens a screencast per producer.
    pub live_source: Option<Arc<dyn LiveSource>>,
    /// Wayland: input through the RemoteDesktop portal.
    pub portal_input: Option<Box<dyn Backend>>,
    /// Without a stored grant, ask on the desktop at once (see `agent`).
    pub prepare_capture: bool,
    /// The sound to send, decided at startup.
    pub audio: sound::Plan,
    /// Ours, for our own virtual display: held so that it lives as long as
    /// the agent (dropping it stops the server).
    #[allow(dead_code)]
    pub sound_server: Option<EmbeddedSound>,
    /// "oriel microphone" on that sound server, where the controller's
    /// microphone comes out; removed when this drops.
    pub microphone: Option<VirtualMicrophone>,
    /// The clipboard shared with the controller (`agent::clipboard`).
    pub clipboard: Option<super::clipboard::Clipboard>,
    /// The pointer the pages draw (`agent::pointer`); `None`: the capture
    /// draws it.
    pub pointer: Option<super::pointer::Pointer>,
    /// The controller's page may make the desktop match its window
    /// (`agent::resize`).
    pub resizable: bool,
}

impl Desktop {
    /// Plans the capture, starts a virtual display if needed, and checks
    /// that the capture works (Wayland: that the portal pieces are there).
    pub fn open(args: &ServeArgs, runtime: &tokio::runtime::Runtime) -> Result<Self> {
        let media_args = &args.media;
        let dir = media_args.fragments_dir();
        let env = capture::SessionEnv::from_env(media_args.display.clone());
        let (plan, why) = capture::plan(media_args.capture, &env, media_args.virtual_display_size)
            .map_err(anyhow::Error::msg)?;
        tracing::info!("capture plan: {why}");
        let mut virtual_display = None;
        let mut sound_server = None;
        let capture = match plan {
            Plan::Ready(c) => c,
            Plan::VirtualDisplay => {
                let (w, h) = media_args.virtual_display_size;
                sound_server = own_sound_server(&media_args.audio)?;
                let session_env = sound_server
                    .as_ref()
                    .map(EmbeddedSound::client_env)
                    .unwrap_or_default();
                let largest = (args.resize != ResizeMode::Off).then_some(super::resize::LARGEST);
                let vd = VirtualDisplay::start_resizable(
                    w,
                    h,
                    largest,
                    media_args.session_cmd.as_deref(),
                    session_env,
                )?;
                tracing::info!("started virtual display {} ({w}x{h})", vd.name);
                let c = Capture::X11 {
                    display: vd.name.clone(),
                };
                virtual_display = Some(vd);
                c
            }
        };
        if media_args.session_cmd.is_some() && virtual_display.is_none() {
            tracing::warn!("--session-cmd only applies to a virtual display; ignored");
        }
        let server = match &sound_server {
            Some(own) => Some(own.server.clone()),
            None => sound::locate_from_env(),
        };
        let audio = sound::plan(&media_args.audio, server).map_err(anyhow::Error::msg)?;
        tracing::info!("sound: {}", audio.summary);
        let microphone = audio.server.as_ref().and_then(|server| {
            VirtualMicrophone::create(server)
                .map_err(|e| tracing::warn!("no microphone for the controller: {e:#}"))
                .ok()
        });
        let mut desktop = Desktop {
            capture,
            virtual_display,
            live_source: None,
            portal_input: None,
            prepare_capture: false,
            audio,
            sound_server,
            microphone,
            clipboard: None,
            pointer: None,
            resizable: false,
        };
        desktop.resizable = match (args.resize, &desktop.capture) {
            (ResizeMode::Off, _) | (_, Capture::Wayland | Capture::Test { .. }) => false,
            (ResizeMode::On, Capture::X11 { .. }) => true,
            (ResizeMode::Auto, Capture::X11 { .. }) => desktop.virtual_display.is_some(),
        };
        if let Capture::Wayland = desktop.capture {
            desktop.open_portal(args, runtime)?;
        } else {
            desktop
                .capture
                .check(media_args.framerate, media_args.x11_capture, dir.as_deref())
                .map_err(|e| {
                    anyhow::anyhow!("capture `{}` does not work: {e}", desktop.capture.name())
                })?;
        }
        Ok(desktop)
    }

    /// No trial capture: it would need a portal session of its own (and on
    /// first use a dialog). Check that the pieces are there instead.
    fn open_portal(&mut self, args: &ServeArgs, runtime: &tokio::runtime::Runtime) -> Result<()> {
        let media_args = &args.media;
        let version = runtime
            .block_on(wayland::check())
            .map_err(|e| anyhow::anyhow!("--capture wayland cannot work here: {e}"))?;
        let portal = wayland::Portal::new(
            runtime.handle().clone(),
            &args.state.dir()?,
            media_args.framerate,
            media_args.fragments_dir(),
            media_args.monitor.number(),
            super::input::wayland_input(&args.input, runtime),
        );
        self.portal_input = portal.input_backend();
        self.prepare_capture = !portal.has_token();
        if portal.has_token() {
            tracing::info!(
                version,
                "ScreenCast portal ready; screen sharing was approved before"
            );
        } else {
            tracing::warn!(
                version,
                "ScreenCast portal ready; screen sharing was never approved: a dialog opens on \
                 the desktop now (\"{}\"): someone there must approve it, once if the portal \
                 can remember it (the grant is then stored in the state directory)",
                portal.dialog()
            );
        }
        self.live_source = Some(Arc::new(portal));
        Ok(())
    }

    /// Our own display is restarted when its Xvfb dies.
    pub fn supervise(&mut self) -> Result<Option<Supervisor>> {
        Ok(self
            .virtual_display
            .take()
            .map(Supervisor::start)
            .transpose()?)
    }
}

/// Our own sound server for our own display, unless sound is off. With
/// `auto`, a missing `pulseaudio` only means no sound; a named device
/// needs the server.
fn own_sound_server(choice: &AudioChoice) -> Result<Option<EmbeddedSound>> {
    if *choice == AudioChoice::Off {
        return Ok(None);
    }
    match (choice, EmbeddedSound::start()) {
        (_, Ok(s)) => Ok(Some(s)),
        (AudioChoice::Auto, Err(e)) => {
            tracing::warn!("the virtual display gets no sound: {e:#}");
            Ok(None)
        }
        (_, Err(e)) => Err(e),
    }
}
