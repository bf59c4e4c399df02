//! Capture backends: which desktop to read frames from, as a gst-launch
//! fragment (see `pipelines/capture-*.txt`).

use std::path::Path;
use std::time::Duration;

use crate::config::CaptureChoice;
use crate::media::{fragments, trial};

/// A resolved capture source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// An X11 display such as `:0`.
    X11 { display: String },
    /// The moving test pattern.
    Test { width: u32, height: u32 },
}

impl Capture {
    pub fn name(&self) -> &'static str {
        match self {
            Capture::X11 { .. } => "x11",
            Capture::Test { .. } => "test",
        }
    }

    /// The rendered gst-launch text of this source.
    pub fn description(&self, framerate: u32, config_dir: Option<&Path>) -> Result<String, String> {
        let (fragment, vars) = match self {
            Capture::X11 { display } => (
                "capture-x11",
                vec![
                    ("display", display.clone()),
                    ("framerate", framerate.to_string()),
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
        };
        fragments::load(fragment, config_dir)
            .map_err(|e| e.to_string())?
            .render(&vars)
    }

    /// Grabs a couple of frames to prove the source works.
    pub fn check(&self, framerate: u32, config_dir: Option<&Path>) -> Result<(), String> {
        let desc = self.description(framerate, config_dir)?;
        trial::run(&desc, 2, Duration::from_secs(5))
    }
}

/// What `auto` (or an explicit choice) resolves to before any display is
/// started: either a ready source, or "start a virtual display first".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Ready(Capture),
    /// No display: oriel starts Xvfb and captures it.
    VirtualDisplay,
}

/// Resolves the user's choice with the environment. `display` is
/// `--display`, falling back to `$DISPLAY`.
pub fn plan(
    choice: CaptureChoice,
    display: Option<String>,
    size: (u32, u32),
) -> Result<Plan, String> {
    let display = display.filter(|d| !d.trim().is_empty());
    match choice {
        CaptureChoice::Test => Ok(Plan::Ready(Capture::Test {
            width: size.0,
            height: size.1,
        })),
        CaptureChoice::X11 => display
            .map(|display| Plan::Ready(Capture::X11 { display }))
            .ok_or_else(|| {
                "--capture x11 needs an X display: set $DISPLAY or --display, or use --capture auto to start a virtual one".to_string()
            }),
        CaptureChoice::Wayland => Err(
            "--capture wayland is not implemented yet; use x11 (e.g. through XWayland's $DISPLAY), auto or test".to_string(),
        ),
        CaptureChoice::Auto => Ok(match display {
            Some(display) => Plan::Ready(Capture::X11 { display }),
            None => Plan::VirtualDisplay,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_display_then_virtual() {
        assert_eq!(
            plan(CaptureChoice::Auto, Some(":3".into()), (640, 480)),
            Ok(Plan::Ready(Capture::X11 {
                display: ":3".into()
            }))
        );
        assert_eq!(
            plan(CaptureChoice::Auto, None, (640, 480)),
            Ok(Plan::VirtualDisplay)
        );
        assert_eq!(
            plan(CaptureChoice::Auto, Some(" ".into()), (640, 480)),
            Ok(Plan::VirtualDisplay)
        );
    }

    #[test]
    fn explicit_choices_explain_errors() {
        let e = plan(CaptureChoice::X11, None, (640, 480)).unwrap_err();
        assert!(e.contains("$DISPLAY"), "{e}");
        let e = plan(CaptureChoice::Wayland, Some(":0".into()), (640, 480)).unwrap_err();
        assert!(e.contains("not implemented"), "{e}");
    }

    #[test]
    fn x11_description_names_display() {
        let c = Capture::X11 {
            display: ":7".into(),
        };
        let d = c.description(60, None).unwrap();
        assert!(d.contains("display-name=:7"), "{d}");
        assert!(d.contains("framerate=60/1"), "{d}");
    }
}
