//! The desktop `serve` shares: an existing X display, a Wayland session
//! through the ScreenCast portal, or oriel's own virtual display (Xvfb).

use std::sync::Arc;

use anyhow::Result;

use crate::config::ServeArgs;
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
        let capture = match plan {
            Plan::Ready(c) => c,
            Plan::VirtualDisplay => {
                let (w, h) = media_args.virtual_display_size;
                let vd = VirtualDisplay::start(w, h, media_args.session_cmd.as_deref())?;
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
        let mut desktop = Desktop {
            capture,
            virtual_display,
            live_source: None,
            portal_input: None,
            prepare_capture: false,
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
