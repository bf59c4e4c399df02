//! Capture backends: which desktop to read frames from, as a gst-launch
//! fragment (see `pipelines/capture-*.txt`).

use std::path::Path;
use std::time::Duration;

use crate::media::{fragments, trial};

/// Which desktop to capture, as asked for (`--capture`); [`plan`] resolves
/// it. Parsed by clap straight from the flag: the variants' docs are its
/// help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureChoice {
    /// Wayland in a Wayland session, else `$DISPLAY` when set, else a
    /// virtual X display started by oriel.
    Auto,
    /// The X11 display named by `$DISPLAY` (or `--display`).
    X11,
    /// Wayland through the ScreenCast portal (xdg-desktop-portal).
    Wayland,
    /// A moving test pattern; needs no display.
    Test,
}

/// When the X11 capture reads the screen. Parsed by clap from
/// `--x11-capture`: the variants' docs are its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum X11Timing {
    /// When something was drawn or the pointer moved (XDamage), at once but
    /// at most --framerate times a second; a still screen sends its last
    /// frame again once a second.
    #[default]
    Damage,
    /// Every frame on a fixed clock, changed or not (ximagesrc), for
    /// comparison.
    Clock,
}

/// A resolved capture source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// An X11 display such as `:0`.
    X11 { display: String },
    /// The moving test pattern.
    Test { width: u32, height: u32 },
    /// A Wayland desktop through the ScreenCast portal. The PipeWire remote
    /// and node only exist per portal session, so the fragment is rendered
    /// when a session is open ([`wayland_description`]).
    Wayland,
}

impl Capture {
    pub fn name(&self) -> &'static str {
        match self {
            Capture::X11 { .. } => "x11",
            Capture::Test { .. } => "test",
            Capture::Wayland => "wayland",
        }
    }

    /// The rendered gst-launch text of this source.
    /// The capture as pipeline text; `show_pointer`: X11 draws the pointer
    /// into the picture (off when the pages draw it, `--pointer page`).
    pub fn description(
        &self,
        framerate: u32,
        timing: X11Timing,
        show_pointer: bool,
        config_dir: Option<&Path>,
    ) -> Result<String, String> {
        let (fragment, vars) = match self {
            Capture::X11 { display } => (
                match timing {
                    X11Timing::Damage => "capture-x11-damage",
                    X11Timing::Clock => "capture-x11",
                },
                vec![
                    ("display", display.clone()),
                    ("framerate", framerate.to_string()),
                    ("show_pointer", show_pointer.to_string()),
                ],
            ),
            Capture::Test { width, height } => (
                "capture-test",
                vec![
                    ("width", width.to_string()),
                    ("height", height.to_string()),
                    ("framerate", framerate.to_string()),
                ],
            ),
            Capture::Wayland => {
                return Err(
                    "a Wayland capture is described per portal session (wayland_description)"
                        .into(),
                )
            }
        };
        fragments::load(fragment, config_dir)
            .map_err(|e| e.to_string())?
            .render(&vars)
    }

    /// Grabs a couple of frames to prove the source works. Not for
    /// Wayland: a trial would need its own portal session (and on first
    /// use a dialog); the portal is checked instead.
    pub fn check(
        &self,
        framerate: u32,
        timing: X11Timing,
        config_dir: Option<&Path>,
    ) -> Result<(), String> {
        let desc = self.description(framerate, timing, true, config_dir)?;
        trial::run(&desc, 2, Duration::from_secs(5))
    }
}

/// The gst-launch text of a Wayland capture: the PipeWire remote `fd` the
/// portal opened and the stream's `node`.
pub fn wayland_description(
    fd: i32,
    node: u32,
    framerate: u32,
    config_dir: Option<&Path>,
) -> Result<String, String> {
    fragments::load("capture-wayland", config_dir)
        .map_err(|e| e.to_string())?
        .render(&[
            ("fd", fd.to_string()),
            ("path", node.to_string()),
            ("framerate", framerate.to_string()),
        ])
}

/// What `auto` (or an explicit choice) resolves to before any display is
/// started: either a ready source, or "start a virtual display first".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Ready(Capture),
    /// No display: oriel starts Xvfb and captures it.
    VirtualDisplay,
}

/// The parts of the environment that say which desktop this is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnv {
    /// `--display`, falling back to `$DISPLAY`.
    pub display: Option<String>,
    /// `$WAYLAND_DISPLAY`.
    pub wayland_display: Option<String>,
    /// `$XDG_SESSION_TYPE` (`wayland`, `x11`, `tty`, ...).
    pub session_type: Option<String>,
}

impl SessionEnv {
    /// Read from this process's environment; `display` is `--display`.
    pub fn from_env(display: Option<String>) -> Self {
        let var = |k| std::env::var(k).ok();
        SessionEnv {
            display: display.or_else(|| var("DISPLAY")),
            wayland_display: var("WAYLAND_DISPLAY"),
            session_type: var("XDG_SESSION_TYPE"),
        }
    }

    fn clean(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// Why this is a Wayland session, if it is one.
    pub fn wayland(&self) -> Option<String> {
        if let Some(w) = Self::clean(&self.wayland_display) {
            return Some(format!("$WAYLAND_DISPLAY is {w}"));
        }
        Self::clean(&self.session_type)
            .filter(|t| t.eq_ignore_ascii_case("wayland"))
            .map(|_| "$XDG_SESSION_TYPE is wayland".to_string())
    }
}

/// Resolves the user's choice with the environment; the string says why
/// (shown by `oriel probe` and logged by `serve`).
pub fn plan(
    choice: CaptureChoice,
    env: &SessionEnv,
    size: (u32, u32),
) -> Result<(Plan, String), String> {
    let display = SessionEnv::clean(&env.display).map(str::to_string);
    match choice {
        CaptureChoice::Test => Ok((
            Plan::Ready(Capture::Test {
                width: size.0,
                height: size.1,
            }),
            "--capture test".into(),
        )),
        CaptureChoice::X11 => display
            .map(|display| {
                let why = format!("--capture x11 on {display}");
                (Plan::Ready(Capture::X11 { display }), why)
            })
            .ok_or_else(|| {
                "--capture x11 needs an X display: set $DISPLAY or --display, or use --capture auto to start a virtual one".to_string()
            }),
        CaptureChoice::Wayland => Ok((Plan::Ready(Capture::Wayland), "--capture wayland".into())),
        CaptureChoice::Auto => Ok(match (env.wayland(), display) {
            // A Wayland session usually has $DISPLAY too (XWayland), but
            // XWayland shows only X clients: the desktop is the Wayland one.
            (Some(why), _) => (Plan::Ready(Capture::Wayland), format!("auto: {why}")),
            (None, Some(display)) => {
                let why = format!("auto: $DISPLAY is {display} and this is not a Wayland session");
                (Plan::Ready(Capture::X11 { display }), why)
            }
            (None, None) => (
                Plan::VirtualDisplay,
                "auto: neither $WAYLAND_DISPLAY nor $DISPLAY is set".into(),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(display: Option<&str>, wayland: Option<&str>, kind: Option<&str>) -> SessionEnv {
        SessionEnv {
            display: display.map(Into::into),
            wayland_display: wayland.map(Into::into),
            session_type: kind.map(Into::into),
        }
    }

    #[test]
    fn auto_prefers_wayland_then_display_then_virtual() {
        let pick = |e: SessionEnv| plan(CaptureChoice::Auto, &e, (640, 480)).map(|(p, _)| p);
        assert_eq!(
            pick(env(Some(":3"), None, None)),
            Ok(Plan::Ready(Capture::X11 {
                display: ":3".into()
            }))
        );
        assert_eq!(pick(env(None, None, None)), Ok(Plan::VirtualDisplay));
        assert_eq!(
            pick(env(Some(" "), Some(""), None)),
            Ok(Plan::VirtualDisplay)
        );
        // XWayland's $DISPLAY does not make a Wayland session an X11 one.
        assert_eq!(
            pick(env(Some(":0"), Some("wayland-0"), Some("wayland"))),
            Ok(Plan::Ready(Capture::Wayland))
        );
        assert_eq!(
            pick(env(None, None, Some("wayland"))),
            Ok(Plan::Ready(Capture::Wayland))
        );
        assert_eq!(
            pick(env(Some(":1"), None, Some("x11"))),
            Ok(Plan::Ready(Capture::X11 {
                display: ":1".into()
            }))
        );
        let (_, why) = plan(
            CaptureChoice::Auto,
            &env(None, Some("wayland-1"), None),
            (1, 1),
        )
        .unwrap();
        assert!(why.contains("WAYLAND_DISPLAY is wayland-1"), "{why}");
    }

    #[test]
    fn explicit_choices_explain_errors() {
        let e = plan(CaptureChoice::X11, &env(None, None, None), (640, 480)).unwrap_err();
        assert!(e.contains("$DISPLAY"), "{e}");
        assert_eq!(
            plan(
                CaptureChoice::Wayland,
                &env(Some(":0"), None, None),
                (640, 480)
            )
            .map(|(p, _)| p),
            Ok(Plan::Ready(Capture::Wayland))
        );
    }

    #[test]
    fn wayland_description_names_fd_and_node() {
        let d = wayland_description(17, 42, 30, None).unwrap();
        assert!(d.contains("pipewiresrc fd=17 path=42"), "{d}");
        assert!(d.contains("orielpace framerate=30"), "{d}");
    }

    #[test]
    fn x11_description_names_display() {
        let c = Capture::X11 {
            display: ":7".into(),
        };
        let d = c.description(60, X11Timing::Damage, false, None).unwrap();
        assert!(d.contains("orielx11src display=:7"), "{d}");
        assert!(d.contains("framerate=60"), "{d}");
        assert!(d.contains("show-pointer=false"), "{d}");
        let d = c.description(60, X11Timing::Clock, true, None).unwrap();
        assert!(d.contains("ximagesrc display-name=:7"), "{d}");
        assert!(d.contains("show-pointer=true"), "{d}");
        assert!(d.contains("framerate=60/1"), "{d}");
    }
}
