//! `oriel`: the command line. Wires capture, encoder, media service,
//! room and web server together; the parts know nothing of each other.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use oriel::config::{
    Command, ControlAction, ControlArgs, InputChoice, LinkArgs, LinkCommand, LogFormat, MediaArgs,
    RoleChoice, ServeArgs, StateArgs,
};
use oriel::config_file::LoadError;
use oriel::desktop::supervisor::Supervisor;
use oriel::desktop::xvfb::VirtualDisplay;
use oriel::desktop::{wayland, x11, xlib_guard};
use oriel::input::service::InputHandle;
use oriel::media::capture::{self, Capture, Plan};
use oriel::media::encoder::{self, EncoderSettings};
use oriel::media::fragments;
use oriel::media::ice::{IceServers, TurnAuth};
use oriel::media::producer::ProducerConfig;
use oriel::media::service::{self, MediaConfig};
use oriel::metrics::Metrics;
use oriel::session::links::{self, StoreCredentials};
use oriel::session::roles::Role;
use oriel::session::room::{Room, RoomConfig};
use oriel::protocol::{IceServer, InputInfo, VideoInfo};
use oriel::signalling::server::{self, ServerConfig};

fn main() -> ExitCode {
    let loaded = match oriel::config_file::load(std::env::args_os()) {
        Ok(l) => l,
        Err(LoadError::Cli(e)) => e.exit(),
        Err(LoadError::File(m)) => {
            eprintln!("oriel: {m}");
            return ExitCode::from(2);
        }
    };
    if let Command::Config(_) = &loaded.cli.command {
        print!("{}", oriel::config_file::render(&loaded));
        return ExitCode::SUCCESS;
    }
    let config_file = loaded.file_found.then(|| loaded.file.clone());
    let cli = loaded.cli;
    init_logging(&cli.log_level, cli.log_format);
    if let Some(file) = config_file {
        tracing::info!("configuration file {}", file.display());
    }
    if let Err(e) = gst::init() {
        eprintln!("oriel: GStreamer could not start: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Probe(args) => probe(args),
        Command::Link(args) => link(args),
        Command::Publish(args) => control(args, "publish"),
        Command::Record(args) => control(args, "record"),
        Command::Config(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oriel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. Under systemd (`JOURNAL_STREAM` set) journald stamps
/// each line and colours mean nothing, so `auto` leaves both out.
fn init_logging(level: &str, format: LogFormat) {
    // zbus (under the Wayland portal code) warns about every portal
    // Request object it cannot cache properties of: noise, unless asked for.
    let level = if level.contains("zbus") {
        level.to_string()
    } else {
        format!("{level},zbus=error")
    };
    let level = level.as_str();
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| {
        eprintln!("oriel: bad --log-level `{level}`; using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if journald => builder.without_time().with_ansi(false).init(),
        LogFormat::Auto | LogFormat::Text => builder.init(),
    }
}

fn config_dir(args: &MediaArgs) -> Option<std::path::PathBuf> {
    args.config_dir
        .clone()
        .or_else(fragments::default_config_dir)
}

fn settings(args: &MediaArgs) -> EncoderSettings {
    EncoderSettings {
        bitrate_kbps: args.bitrate,
        framerate: args.framerate,
    }
}

fn probe(args: MediaArgs) -> Result<()> {
    let dir = config_dir(&args);
    let dir = dir.as_deref();
    println!("capture backends:");
    let env = capture::SessionEnv::from_env(args.display.clone());
    let display = env.display.clone().filter(|d| !d.trim().is_empty());
    match &display {
        Some(d) => match (Capture::X11 { display: d.clone() }).check(args.framerate, dir) {
            Ok(()) => println!("  x11      available    display {d}"),
            Err(e) => println!("  x11      unavailable  display {d}: {e}"),
        },
        None => println!("  x11      unavailable  no $DISPLAY (auto starts a virtual display)"),
    }
    match which("Xvfb") {
        Some(path) => println!("  virtual  available    Xvfb at {path}"),
        None => println!("  virtual  unavailable  Xvfb not installed (package xvfb)"),
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let session = match env.wayland() {
        Some(why) => why,
        None => {
            "not a Wayland session ($WAYLAND_DISPLAY unset, $XDG_SESSION_TYPE not wayland)".into()
        }
    };
    match runtime.block_on(wayland::check()) {
        Ok(version) => println!(
            "  wayland  available    ScreenCast portal version {version}{}; {session}",
            if version >= 4 {
                ", remembers approval"
            } else {
                ", asks at every start"
            }
        ),
        Err(e) => println!("  wayland  unavailable  {e}; {session}"),
    }
    let uinput = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/uinput")
        .is_ok();
    match runtime.block_on(wayland::remote_desktop_version()) {
        Ok(v) => println!(
            "  wayland input: {}; RemoteDesktop portal version {v} ({})",
            if uinput {
                "uinput (/dev/uinput is writable)"
            } else {
                "/dev/uinput not writable"
            },
            if v >= wayland::REMOTE_PERSIST_VERSION {
                "remembers approval: auto uses it without uinput"
            } else {
                "cannot remember approval: only with --input portal"
            }
        ),
        Err(e) => println!(
            "  wayland input: {}; {e}",
            if uinput {
                "uinput (/dev/uinput is writable)"
            } else {
                "/dev/uinput not writable"
            }
        ),
    }
    let test = Capture::Test {
        width: args.virtual_display_size.0,
        height: args.virtual_display_size.1,
    };
    match test.check(args.framerate, dir) {
        Ok(()) => println!("  test     available    moving test pattern"),
        Err(e) => println!("  test     unavailable  {e}"),
    }
    let chosen = match capture::plan(args.capture, &env, args.virtual_display_size) {
        Ok((Plan::Ready(c), why)) => format!("{} ({why})", c.name()),
        Ok((Plan::VirtualDisplay, why)) => format!("x11 on a virtual display (Xvfb) ({why})"),
        Err(e) => format!("none: {e}"),
    };
    println!("serve would capture: {chosen}\n");

    println!("H.264 encoders, best first:");
    let all = encoder::probe_all(settings(&args), dir);
    for a in &all {
        match &a.result {
            Ok(()) => println!("  {:<14} available", a.name),
            Err(e) => println!("  {:<14} unavailable  {e}", a.name),
        }
    }
    match encoder::pick(args.encoder.as_deref(), settings(&args), dir) {
        Ok(name) => println!("serve would encode with: {name}"),
        Err(e) => println!("serve would fail: {e}"),
    }
    Ok(())
}

fn state_dir(state: &StateArgs) -> Result<std::path::PathBuf> {
    state
        .state_dir
        .clone()
        .or_else(links::default_state_dir)
        .context("no state directory: set --state-dir or $HOME")
}

fn open_store(state: &StateArgs) -> Result<links::Store> {
    links::Store::open(&state_dir(state)?)
}

/// `URL#token=TOKEN`: the fragment never reaches server logs or Referer.
fn link_url(base: &str, token: &str) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}#token={token}")
}

/// `oriel publish|record start|stop|status`: one request to the running
/// agent, as its controller.
fn control(args: ControlArgs, what: &str) -> Result<()> {
    if what == "record" && args.target.is_some() {
        anyhow::bail!("`oriel record` takes no target name");
    }
    let store = open_store(&args.state)?;
    let (_, token) = store.startup_controller()?;
    let request = match args.action {
        ControlAction::Status => None,
        ControlAction::Start | ControlAction::Stop => {
            let on = args.action == ControlAction::Start;
            Some(match what {
                "publish" => serde_json::json!({"publish": {"target": args.target, "on": on}}),
                _ => serde_json::json!({"record": {"on": on}}),
            })
        }
    };
    let cert = state_dir(&args.state)?
        .join("tls")
        .join(oriel::tls::cert::CERT_FILE);
    let status = oriel::signalling::control::call(&args.url, &token, request, Some(&cert))?;
    let section = if what == "publish" {
        &status["publish"]
    } else {
        &status["recording"]
    };
    println!("{}", serde_json::to_string_pretty(section)?);
    Ok(())
}

fn link(args: LinkArgs) -> Result<()> {
    let store = open_store(&args.state)?;
    match args.command {
        LinkCommand::Create {
            role,
            slot,
            ttl,
            label,
            url,
            via_sfu,
        } => {
            let role = match (role, slot) {
                (RoleChoice::Controller, None) => Role::Controller,
                (RoleChoice::Viewer, None) => Role::Viewer,
                (RoleChoice::Player, Some(slot)) => Role::Player { slot },
                (RoleChoice::Player, None) => {
                    anyhow::bail!("a player link needs --slot N (2..=16)")
                }
                (_, Some(_)) => anyhow::bail!("--slot only applies to --role player"),
            };
            if via_sfu && role != Role::Viewer {
                anyhow::bail!("--via-sfu links are view-only: use --role viewer");
            }
            let ttl = links::parse_ttl(&ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            let (link, token) = store.create(role, ttl, label)?;
            eprintln!(
                "oriel: link {} ({}{}), {}",
                link.id,
                link.role,
                link.slot.map(|s| format!(" slot {s}")).unwrap_or_default(),
                expiry_text(link.expires)
            );
            if via_sfu {
                // The page asks the agent (with this token) where to watch.
                let base = url.split('#').next().unwrap_or(&url);
                let sep = if base.ends_with('/') { "" } else { "/" };
                println!("{base}{sep}sfu.html#token={token}");
            } else {
                println!("{}", link_url(&url, &token));
            }
        }
        LinkCommand::List => {
            let all = store.list()?;
            if all.is_empty() {
                println!("no links (create one with `oriel link create --role viewer`)");
            }
            println!(
                "{:<14} {:<11} {:<5} {:<8} {:<26} label",
                "id", "role", "slot", "state", "expires"
            );
            for l in all {
                let state = if l.revoked {
                    "revoked"
                } else if l.expires.is_some_and(|e| e <= links::now_unix()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<11} {:<5} {:<8} {:<26} {}",
                    l.id,
                    l.role,
                    l.slot.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    state,
                    expiry_text(l.expires),
                    l.label.unwrap_or_default()
                );
            }
        }
        LinkCommand::Revoke { id } => {
            let l = store.revoke(&id)?;
            println!(
                "revoked link {} ({}); connected clients using it are disconnected",
                l.id, l.role
            );
        }
    }
    Ok(())
}

fn expiry_text(expires: Option<u64>) -> String {
    match expires {
        None => "never expires".into(),
        Some(e) => {
            let now = links::now_unix();
            if e <= now {
                "expired".into()
            } else {
                let left = e - now;
                match left {
                    0..=5399 => format!("expires in {} min", left.div_ceil(60)),
                    5400..=172_799 => format!("expires in {} h", left / 3600),
                    _ => format!("expires in {} days", left / 86400),
                }
            }
        }
    }
}

/// Starts the input backend the user asked for. `auto` prefers uinput
/// (keyboard, mouse, pointer and gamepads, X11 and Wayland alike) and falls
/// back to XTest on the captured X display, saying why.
fn start_input(
    choice: &InputChoice,
    capture: &Capture,
    portal: Option<Box<dyn oriel::input::backend::Backend>>,
) -> Result<Option<InputHandle>> {
    use oriel::input::{record::Recorder, service, uinput::Uinput, xtest::XTest};
    let display = match capture {
        Capture::X11 { display } => Some(display.clone()),
        Capture::Test { .. } | Capture::Wayland => None,
    };
    let wayland = matches!(capture, Capture::Wayland);
    let backend: Box<dyn oriel::input::backend::Backend> = match (choice, display) {
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
fn wayland_input(choice: &InputChoice, runtime: &tokio::runtime::Runtime) -> bool {
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

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn serve(args: ServeArgs) -> Result<()> {
    let media_args = &args.media;
    let dir = config_dir(media_args);
    let playout_delay = args.playout_delay().map_err(anyhow::Error::msg)?;
    let ice_servers = args.ice_servers().map_err(anyhow::Error::msg)?;
    log_ice_servers(&ice_servers);
    oriel::publish::target::check_unique(&args.publish).map_err(anyhow::Error::msg)?;

    // TLS first: a refused or broken setup should fail before any capture starts.
    let tls_decision = oriel::tls::mode::decide(
        args.tls,
        args.tls_cert.clone(),
        args.tls_key.clone(),
        args.listen,
        args.insecure_http,
    )
    .map_err(anyhow::Error::msg)?;
    let tls = oriel::tls::setup(
        &tls_decision,
        &state_dir(&args.state)?,
        args.listen,
        args.public_url.as_deref(),
    )?;

    if let Some(path) = &args.record {
        // A bad path fails at start, not after the capture is up.
        oriel::media::recording::check_path(path)?;
    }

    // The desktop: an existing display, or our own virtual one.
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
    // The runtime comes early: the Wayland portal talks D-Bus on it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let mut live_source: Option<Arc<dyn service::LiveSource>> = None;
    let mut portal_input = None;
    // Without a stored grant, ask on the desktop at once (see below).
    let mut prepare_capture = false;
    if let Capture::Wayland = capture {
        // No trial capture: it would need a portal session of its own (and
        // on first use a dialog). Check that the pieces are there instead.
        let version = runtime
            .block_on(wayland::check())
            .map_err(|e| anyhow::anyhow!("--capture wayland cannot work here: {e}"))?;
        let portal = wayland::Portal::new(
            runtime.handle().clone(),
            &state_dir(&args.state)?,
            media_args.framerate,
            dir.clone(),
            media_args.monitor.number(),
            wayland_input(&args.input, &runtime),
        );
        portal_input = portal.input_backend();
        prepare_capture = !portal.has_token();
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
        live_source = Some(Arc::new(portal));
    } else {
        capture
            .check(media_args.framerate, dir.as_deref())
            .map_err(|e| anyhow::anyhow!("capture `{}` does not work: {e}", capture.name()))?;
    }
    let encoder_name = encoder::pick(
        media_args.encoder.as_deref(),
        settings(media_args),
        dir.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    tracing::info!(
        capture = capture.name(),
        encoder = encoder_name,
        "media ready"
    );

    let producer = ProducerConfig {
        capture: match capture {
            // Rendered per portal session by the live source.
            Capture::Wayland => String::new(),
            _ => capture
                .description(media_args.framerate, dir.as_deref())
                .map_err(anyhow::Error::msg)?,
        },
        encoder: encoder::description(encoder_name, settings(media_args), dir.as_deref())
            .map_err(anyhow::Error::msg)?,
        playout_delay,
        // A lost screencast is first replaced under the running encoder.
        swappable_capture: matches!(capture, Capture::Wayland),
    };
    let input = start_input(&args.input, &capture, portal_input)?;
    let input_sink: Option<oriel::media::peer::InputSink> = input.clone().map(|i| {
        let sink: oriel::media::peer::InputSink =
            Arc::new(move |peer, bytes: &[u8]| i.data(peer, bytes));
        sink
    });
    let media_config = MediaConfig {
        input: input_sink,
        producer,
        ice: ice_servers.clone(),
        keyframe_interval: args.keyframe_interval(),
        idle_stop: Duration::from_millis(args.idle_stop_ms),
        start_timeout: Duration::from_secs(10),
        source_check: match &capture {
            Capture::X11 { display } => {
                let display = display.clone();
                let check: service::SourceCheck = Arc::new(move || x11::reachable(&display));
                Some(check)
            }
            Capture::Wayland => {
                let check: service::SourceCheck = Arc::new(wayland::compositor_reachable);
                Some(check)
            }
            Capture::Test { .. } => None,
        },
        live_source,
    };
    // Our own display is restarted when its Xvfb dies.
    let virtual_display = virtual_display.map(Supervisor::start).transpose()?;

    let store = open_store(&args.state)?;
    let (_, controller_token) = store.startup_controller()?;

    runtime.block_on(async move {
        let listener = server::bind(args.listen).await?;
        let media_cell = Arc::new(std::sync::OnceLock::new());
        let room = Room::new(
            RoomConfig {
                max_clients: args.max_clients as usize,
                video: VideoInfo {
                    codec: "H264".into(),
                    encoder: encoder_name.into(),
                    framerate: media_args.framerate,
                },
                input: InputInfo {
                    backend: input.as_ref().map_or("none", |i| i.backend).into(),
                    gamepads: input.as_ref().is_some_and(|i| i.gamepads),
                },
                // Video and the data channels' application line.
                media_lines: 2,
                max_slot: args.max_players,
            },
            Box::new(StoreCredentials::new(&store)),
        )
        .with_ice(browser_ice(ice_servers));
        // Metrics need the media stats, the media service needs the room's
        // event sink: create the sink first, then the service.
        let (event_tx, mut event_rx) = tokio::sync::mpsc::unbounded_channel();
        let media = service::spawn(media_config, move |ev| {
            let _ = event_tx.send(ev);
        })
        .context("starting the media thread")?;
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
            tracing::warn!("libX11 older than 1.7 or missing: if the X server dies, oriel exits with it");
        }
        let publishing = oriel::publish::Publishing::start(
            args.publish.clone(),
            oriel::publish::Secrets {
                janus: oriel::publish::janus::RoomSecrets {
                    secret: args.janus_secret.clone(),
                    pin: args.janus_pin.clone(),
                },
                whip_token: args.whip_token.clone(),
            },
            media.clone(),
        )?;
        let mut metrics = Metrics::new(media.stats.clone(), encoder_name.into(), capture.name().into());
        metrics.publishing = (!publishing.is_empty()).then(|| publishing.clone());
        metrics.input = input.as_ref().map(|i| i.stats.clone());
        metrics.input_backend = input.as_ref().map_or("none", |i| i.backend).into();
        let metrics = Arc::new(metrics);
        let _ = media_cell.set(media.clone());
        let signalling = server::start_room(room, media_cell, input.clone(), metrics.clone(), store.links_path());
        let sig = signalling.clone();
        let to_sfu = publishing.clone();
        tokio::spawn(async move {
            while let Some(ev) = event_rx.recv().await {
                // A publish target's own events go to its task, the rest to the room.
                if !to_sfu.media_event(&ev) {
                    sig.media_event(ev);
                }
            }
        });
        let recording: Arc<dyn oriel::signalling::control::RecordControl> = Arc::new(MediaRecording {
            media: media.clone(),
            path: recording_path(args.record.as_deref(), &state_dir(&args.state)?),
        });
        let control = Arc::new(oriel::signalling::control::ControlPlane::new(
            publishing.clone(),
            Some(recording),
            args.janus_pin.as_ref().map(|p| p.expose().to_string()),
            Box::new(StoreCredentials::new(&store)),
            metrics.clone(),
        ));

        let addr = listener.local_addr()?;
        let scheme = tls_decision.scheme();
        if tls_decision == (oriel::tls::mode::Decision::Plain { exposed: true }) {
            tracing::warn!(
                "PLAIN HTTP on {addr} (--insecure-http): links, tokens and input cross the network unencrypted, and browsers refuse gamepads and keyboard lock"
            );
        }
        println!("oriel: serving {scheme}://{addr}/");
        if let Some((loaded, source)) = &tls {
            println!("oriel: TLS certificate SHA-256 {} ({source})", loaded.fingerprint);
        }
        let public = args
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(scheme, addr));
        let controller_link = link_url(&public, &controller_token);
        if std::env::var_os("JOURNAL_STREAM").is_some() {
            // Under systemd stdout is the journal, which keeps lines for
            // weeks and which admins can read: the link goes to a file only
            // the user can read.
            let path = store.write_private("controller-link", format!("{controller_link}\n").as_bytes())?;
            println!("oriel: controller link in {} (kept out of the log)", path.display());
        } else {
            println!("oriel: controller link {controller_link}");
        }
        if let Some(vd) = &virtual_display {
            println!("oriel: virtual display {}", vd.name);
        }

        // Listening and ready: tell systemd (Type=notify), and feed its
        // watchdog from the runtime, so a wedged runtime gets restarted.
        oriel::systemd::notify("READY=1");
        if let Some(every) = oriel::systemd::watchdog_interval() {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    oriel::systemd::notify("WATCHDOG=1");
                }
            });
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server_future = server::serve(
            listener,
            signalling.clone(),
            metrics,
            ServerConfig {
                allow_origins: args.allow_origins.clone(),
                tls: tls.map(|(loaded, _)| loaded.config),
                control,
                connect_src: publishing.browser_origins(),
            },
            async move {
                let _ = stop_rx.await;
            },
        );
        tokio::pin!(server_future);
        tokio::select! {
            _ = &mut server_future => tracing::error!("the web server stopped"),
            _ = wait_for_signal() => {
                tracing::info!("shutting down");
                if let Some(vd) = &virtual_display {
                    vd.stop_watching();
                }
                oriel::systemd::notify("STOPPING=1");
                signalling.shutdown("the agent is shutting down").await;
                publishing.shutdown().await;
                let _ = stop_tx.send(());
                let _ = tokio::time::timeout(Duration::from_secs(3), &mut server_future).await;
            }
        }
        // Held keys released and uinput devices removed before anything else
        // goes, then media, then the display and the session.
        let i = input.clone();
        let m = media.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(i) = i {
                i.shutdown(Duration::from_secs(2));
            }
            m.shutdown(Duration::from_secs(5));
            if let Some(vd) = virtual_display {
                vd.shutdown();
            }
        })
        .await;
        Ok::<(), anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Recording as `/api/control` drives it: through the media thread.
struct MediaRecording {
    media: service::MediaHandle,
    /// Where run-time recordings go (a file name or a directory).
    path: std::path::PathBuf,
}

impl oriel::signalling::control::RecordControl for MediaRecording {
    fn start(&self, by: &str) -> Result<(), String> {
        // `<state-dir>/recordings` may not exist yet; a `--record` path was
        // checked at startup.
        if self.path.extension().is_none() {
            let _ = std::fs::create_dir_all(&self.path);
        }
        self.media
            .start_recording(self.path.clone(), by.to_string())
            .blocking_recv()
            .map_err(|_| "the media service stopped".to_string())?
            .map(|_| ())
    }

    fn stop(&self, by: &str) -> Result<(), String> {
        tracing::info!(by, "recording stop asked");
        self.media
            .stop_recording()
            .blocking_recv()
            .map_err(|_| "the media service stopped".to_string())?
            .map(|_| ())
    }

    fn status(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering;
        let r = &self.media.stats.recording;
        let active = r.active.load(Ordering::Relaxed);
        let path = r.path.lock().ok().and_then(|p| p.clone());
        serde_json::json!({
            "active": active,
            "path": path.map(|p| p.display().to_string()),
            "frames": r.frames.load(Ordering::Relaxed),
            "bytes": r.bytes.load(Ordering::Relaxed),
            "into": self.path.display().to_string(),
        })
    }
}

/// Where recordings started at run time go: the `--record` path, else
/// `~/Videos` when it exists, else `<state-dir>/recordings`.
fn recording_path(record: Option<&std::path::Path>, state: &std::path::Path) -> std::path::PathBuf {
    if let Some(p) = record {
        return p.to_path_buf();
    }
    std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join("Videos"))
        .filter(|v| v.is_dir())
        .unwrap_or_else(|| state.join("recordings"))
}

/// Says which ICE servers are in use, never their secrets.
fn log_ice_servers(ice: &IceServers) {
    let auth = match &ice.turn {
        None => "none",
        Some((_, TurnAuth::Static { .. })) => "static username and password",
        Some((_, TurnAuth::Rest { .. })) => "REST credentials minted per session",
    };
    tracing::info!(
        stun = ice
            .stun
            .as_ref()
            .map(|s| s.browser())
            .as_deref()
            .unwrap_or("none"),
        turn = ice.turn_url().as_deref().unwrap_or("none"),
        turn_auth = auth,
        "ICE servers"
    );
}

/// The room's source of `welcome.iceServers`: fresh credentials per peer.
fn browser_ice(ice: IceServers) -> oriel::session::room::IceSource {
    Box::new(move |peer| {
        ice.for_browser(&format!("oriel-{peer}"), std::time::SystemTime::now())
            .into_iter()
            .map(|s| IceServer {
                urls: s.urls,
                username: s.username,
                credential: s.credential,
            })
            .collect()
    })
}

/// Where browsers reach us when `--public-url` is not given: the listen
/// address, or this host's name when listening on every interface.
fn default_public_url(scheme: &str, addr: std::net::SocketAddr) -> String {
    match oriel::tls::cert::hostname() {
        Some(host) if addr.ip().is_unspecified() => format!("{scheme}://{host}:{}/", addr.port()),
        _ => format!("{scheme}://{addr}/"),
    }
}

async fn wait_for_signal() {
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
