//! `oriel serve`: the agent, assembled from its parts. Each step is a
//! small constructor of its own module; this file only puts them in order:
//!
//! 1. `startup`: flags checked (TLS, ICE, publish targets, record path);
//! 2. `desktop`: the display to share, or our own virtual one;
//! 3. `media` and `input`: encoder, producer, the media config, input backend;
//! 4. on the runtime: the room (`room`), the media thread, publishing,
//!    metrics, the control plane (`recording`), the web server;
//! 5. `lifecycle`: ready, the stop signal, then everything down in order.
//!
//! The parts know nothing of each other: media events reach the room (or a
//! publish target) through one task here.

mod clipboard;
mod desktop;
mod input;
mod lifecycle;
mod media;
mod pointer;
mod recording;
mod resize;
mod room;
mod startup;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::ServeArgs;
use crate::desktop::supervisor::Supervisor;
use crate::desktop::xlib_guard;
use crate::input::failover::Health;
use crate::input::service::InputHandle;
use crate::media::service::{self, MediaConfig, MediaHandle};
use crate::metrics::Metrics;
use crate::publish::Publishing;
use crate::session::links::{Store, StoreCredentials};
use crate::signalling::control::{ControlPlane, RecordControl};
use crate::signalling::server::{self, ServerConfig, Signalling};

use desktop::Desktop;
use startup::Checked;

/// Runs the agent until SIGTERM or Ctrl-C.
pub fn serve(args: ServeArgs) -> Result<()> {
    let checked = startup::check(&args)?;
    lifecycle::ignore_file_size_signal();
    // The runtime comes early: the Wayland portal talks D-Bus on it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut desktop = Desktop::open(&args, &runtime)?;
    // Before the producer: a pointer the pages draw is left out of it.
    desktop.pointer = pointer::start(&args, &desktop.capture);
    let encoder_name = media::pick_encoder(&args, &desktop.capture)?;
    let producer = media::producer(
        &args,
        &desktop.capture,
        encoder_name,
        checked.playout_delay,
        desktop.audio.fragment.clone(),
        desktop.pointer.is_none(),
    )?;
    let (input, input_health) =
        input::start(&args.input, &desktop.capture, desktop.portal_input.take())?.unzip();
    let media_config = media::config(
        &args,
        &desktop.capture,
        producer,
        checked.ice_servers.clone(),
        input.as_ref(),
        desktop.live_source.take(),
        desktop.microphone.as_ref(),
    );
    let mut media_config = media_config;
    desktop.clipboard = clipboard::start(&args, &desktop.capture);
    media_config.clipboard = desktop.clipboard.as_ref().map(|c| c.hub.clone());
    media_config.pointer = desktop.pointer.as_ref().map(|p| p.hub.clone());
    media_config.files = uploads::start(&args);
    let virtual_display = desktop.supervise()?;
    let store = args.state.open_store()?;
    let (_, controller_token) = store.startup_controller()?;

    runtime.block_on(run(Parts {
        args: &args,
        checked,
        desktop,
        encoder_name,
        media_config,
        input,
        input_health,
        virtual_display,
        store,
        controller_token,
    }))?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// What `serve` built before the runtime takes over.
struct Parts<'a> {
    args: &'a ServeArgs,
    checked: Checked,
    desktop: Desktop,
    encoder_name: &'static str,
    media_config: MediaConfig,
    input: Option<InputHandle>,
    input_health: Option<Arc<Health>>,
    virtual_display: Option<Supervisor>,
    store: Store,
    controller_token: String,
}

async fn run(parts: Parts<'_>) -> Result<()> {
    let Parts {
        args,
        checked,
        desktop,
        encoder_name,
        media_config,
        input,
        input_health,
        virtual_display,
        store,
        controller_token,
    } = parts;
    let listener = server::bind(args.listen).await?;
    let resize = match (&desktop.capture, desktop.resizable) {
        (crate::media::capture::Capture::X11 { display: screen }, true) => resize::start(screen),
        _ => None,
    };
    let room = room::room(
        args,
        encoder_name,
        input_health.as_ref(),
        checked.ice_servers.clone(),
        &store,
        desktop.clipboard.is_some(),
        resize.is_some(),
    );
    // Metrics need the media stats, the media service needs the room's
    // event sink: create the sink first, then the service.
    let (event_tx, event_rx) = tokio::sync::mpsc::unbounded_channel();
    let upload_stats = media_config.files.as_ref().map(|f| f.stats.clone());
    // `oriel send` reaches the controller's page through this socket.
    let _send_socket = match &media_config.files {
        Some(f) => crate::signalling::send_socket::listen(&args.state.dir()?, f.outbox.clone())
            .map_err(|e| tracing::warn!("oriel send will not reach this agent: {e:#}"))
            .ok(),
        None => None,
    };
    let media = service::spawn(media_config, move |ev| {
        let _ = event_tx.send(ev);
    })
    .context("starting the media thread")?;
    start_media(args, &media, desktop.prepare_capture);
    let publishing = Publishing::start(
        args.publish.clone(),
        crate::publish::Secrets {
            janus: crate::publish::janus::RoomSecrets {
                secret: args.janus_secret.clone(),
                pin: args.janus_pin.clone(),
            },
            whip_token: args.whip_token.clone(),
        },
        media.clone(),
    )?;
    let mut metrics = Metrics::new(
        media.stats.clone(),
        encoder_name.into(),
        desktop.capture.name().into(),
    );
    metrics.audio = desktop.audio.summary.clone();
    metrics.publishing = (!publishing.is_empty()).then(|| publishing.clone());
    metrics.input = input.as_ref().map(|i| i.stats.clone());
    metrics.input_backend = input.as_ref().map_or("none", |i| i.backend).into();
    metrics.input_health = input_health.clone();
    metrics.clipboard = desktop.clipboard.as_ref().map(|c| c.stats.clone());
    metrics.pointer = desktop.pointer.as_ref().map(|p| p.hub.clone());
    metrics.uploads = upload_stats;
    let metrics = Arc::new(metrics);
    let media_cell = Arc::new(std::sync::OnceLock::new());
    let _ = media_cell.set(media.clone());
    let signalling = server::start_room(
        room,
        server::Outlets {
            media: media_cell,
            input: input.clone(),
            resize,
        },
        metrics.clone(),
        store.links_path(),
    );
    route_media_events(event_rx, signalling.clone(), publishing.clone());
    if let Some(input) = &input {
        let s = signalling.clone();
        input.on_flood(Box::new(move |peer, why| s.input_flood(peer, why)));
    }
    let recording: Arc<dyn RecordControl> = Arc::new(recording::MediaRecording {
        media: media.clone(),
        path: recording::recording_path(args.record.as_deref(), &args.state.dir()?),
    });
    let mut control = ControlPlane::new(
        publishing.clone(),
        Some(recording),
        args.janus_pin.as_ref().map(|p| p.expose().to_string()),
        Box::new(StoreCredentials::new(&store)),
        metrics.clone(),
    );
    control.input = input_health;
    let control = Arc::new(control);

    let (loaded, tls_source) = match checked.tls {
        Some((loaded, source)) => (Some(loaded), Some(source)),
        None => (None, None),
    };
    lifecycle::Announcement {
        addr: listener.local_addr()?,
        tls_decision: &checked.tls_decision,
        fingerprint: loaded
            .as_ref()
            .map(|l| l.fingerprint.as_str())
            .zip(tls_source.as_deref()),
        public_url: args.public_url.as_deref(),
        controller_token: &controller_token,
        store: &store,
        virtual_display: virtual_display.as_ref().map(|vd| vd.name.as_str()),
    }
    .print()?;
    lifecycle::ready();
    lifecycle::log_live_objects_on_sigusr1();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_future = server::serve(
        listener,
        signalling.clone(),
        metrics,
        ServerConfig {
            allow_origins: args.allow_origins.clone(),
            tls: loaded.map(|l| l.config),
            control,
            connect_src: publishing.browser_origins(),
            limits: checked.limits,
        },
        async move {
            let _ = stop_rx.await;
        },
    );
    tokio::pin!(server_future);
    tokio::select! {
        _ = &mut server_future => tracing::error!("the web server stopped"),
        _ = lifecycle::wait_for_signal() => {
            tracing::info!("shutting down");
            if let Some(vd) = &virtual_display {
                vd.stop_watching();
            }
            crate::systemd::notify("STOPPING=1");
            signalling.shutdown("the agent is shutting down").await;
            publishing.shutdown().await;
            let _ = stop_tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut server_future).await;
        }
    }
    stop(input, media, virtual_display).await;
    Ok(())
}

/// What the media thread does before anyone joins: `--record`, the first
/// Wayland approval, and surviving a dying X server.
fn start_media(args: &ServeArgs, media: &MediaHandle, prepare_capture: bool) {
    if let Some(path) = args.record.clone() {
        let reply = media.start_recording(path, "--record".into());
        tokio::spawn(async move {
            // Started (logged by the media thread) or refused: say why.
            if let Ok(Err(e)) = reply.await {
                tracing::error!("--record: {e}");
            }
        });
    }
    if prepare_capture {
        // The first approval while the user is at the desktop (e.g. just
        // enabled the service), not when a viewer connects from afar.
        media.prepare();
    }
    // A dying X server must cost the capture, not the process.
    let lost = media.clone();
    if !xlib_guard::install(move |display| {
        lost.capture_lost(format!("lost the connection to X display {display}"))
    }) {
        tracing::warn!(
            "libX11 older than 1.7 or missing: if the X server dies, oriel exits with it"
        );
    }
}

/// A publish target's own events go to its task, the rest to the room.
fn route_media_events(
    mut events: tokio::sync::mpsc::UnboundedReceiver<service::MediaEvent>,
    signalling: Signalling,
    publishing: Publishing,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if !publishing.media_event(&ev) {
                signalling.media_event(ev);
            }
        }
    });
}

/// Held keys released and uinput devices removed before anything else
/// goes, then media, then the display and the session.
async fn stop(input: Option<InputHandle>, media: MediaHandle, virtual_display: Option<Supervisor>) {
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(i) = input {
            i.shutdown(Duration::from_secs(2));
        }
        media.shutdown(Duration::from_secs(5));
        if let Some(vd) = virtual_display {
            vd.shutdown();
        }
    })
    .await;
}
