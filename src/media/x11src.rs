//! `orielx11src`: the X11 capture by damage. A live source that pushes a
//! frame when the screen was drawn on or the pointer moved, as soon as it
//! happens but at most `framerate` times a second, and otherwise repeats
//! the last frame every `repeat-ms` (browsers and the capture watchdog want
//! to hear from a still screen now and then; a repeat costs no grab, and
//! the encoder turns it into a few hundred bytes of skipped blocks). After
//! the last change it first repeats the frame `settle-frames` times at the
//! full rate: a big change (a window opened, a page scrolled) leaves x264's
//! first frame of it coarse under the bitrate cap, and each repeat refines
//! it; without them the picture stayed coarse until the once-a-second
//! repeats had refined it (the click bench saw a light screen read as
//! neither light nor dark for up to 3 s at 60 fps). The grabbing itself
//! is `desktop::x11::screen`.
//!
//! Registered with GStreamer at start-up ([`register`]), so capture
//! fragments name it like any element.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use crate::desktop::x11::screen::{Change, Screen};
use crate::media::capture_counters::counters;
use crate::media::pacer::{pacing_properties, Next, Pacer, SETTLE_FRAMES};

/// How often a changed screen size is looked for (one GetGeometry).
const SIZE_CHECK: Duration = Duration::from_millis(250);
/// The longest the streaming thread waits before looking at `unlock`.
const UNLOCK_CHECK: Duration = Duration::from_millis(50);

glib::wrapper! {
    pub struct X11Src(ObjectSubclass<imp::X11Src>)
        @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

/// Makes `orielx11src` known to GStreamer (after `gst::init`).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, "orielx11src", gst::Rank::NONE, X11Src::static_type())
}

mod imp {
    use super::*;

    #[derive(Debug, Clone)]
    struct Settings {
        display: String,
        framerate: u32,
        show_pointer: bool,
        repeat_ms: u32,
        settle_frames: u32,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                display: String::new(),
                framerate: 30,
                show_pointer: true,
                repeat_ms: 1000,
                settle_frames: SETTLE_FRAMES,
            }
        }
    }

    struct State {
        screen: Screen,
        last: Option<gst::Buffer>,
        dirty: bool,
        pacer: Pacer,
        size_checked: Instant,
    }

    #[derive(Default)]
    pub struct X11Src {
        settings: Mutex<Settings>,
        state: Mutex<Option<State>>,
        unlocked: AtomicBool,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for X11Src {
        const NAME: &'static str = "OrielX11Src";
        type Type = super::X11Src;
        type ParentType = gst_base::PushSrc;
    }

    impl ObjectImpl for X11Src {
        fn properties() -> &'static [glib::ParamSpec] {
            static P: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                let mut specs = vec![
                    glib::ParamSpecString::builder("display")
                        .blurb("X display to read, e.g. :0 (default: $DISPLAY)")
                        .build(),
                    glib::ParamSpecUInt::builder("framerate")
                        .blurb("At most this many frames a second")
                        .minimum(1)
                        .maximum(240)
                        .default_value(30)
                        .build(),
                    glib::ParamSpecBoolean::builder("show-pointer")
                        .blurb("Draw the pointer into the picture")
                        .default_value(true)
                        .build(),
                ];
                specs.extend(pacing_properties());
                specs
            });
            P.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let Ok(mut s) = self.settings.lock() else {
                return;
            };
            match pspec.name() {
                "display" => {
                    s.display = value
                        .get::<Option<String>>()
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                }
                "framerate" => s.framerate = value.get().unwrap_or(30),
                "show-pointer" => s.show_pointer = value.get().unwrap_or(true),
                "repeat-ms" => s.repeat_ms = value.get().unwrap_or(1000),
                "settle-frames" => s.settle_frames = value.get().unwrap_or(SETTLE_FRAMES),
                _ => {}
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
            match pspec.name() {
                "display" => s.display.to_value(),
                "framerate" => s.framerate.to_value(),
                "show-pointer" => s.show_pointer.to_value(),
                "settle-frames" => s.settle_frames.to_value(),
                _ => s.repeat_ms.to_value(),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.set_live(true);
            obj.set_format(gst::Format::Time);
            obj.set_do_timestamp(true);
        }
    }

    impl GstObjectImpl for X11Src {}

    impl ElementImpl for X11Src {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static M: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "oriel X11 damage capture",
                    "Source/Video",
                    "Reads an X screen when it changes (XDamage, XShm), with the pointer",
                    "oriel",
                )
            });
            Some(&M)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::builder("video/x-raw")
                    .field("format", "BGRx")
                    .field("width", gst::IntRange::new(1, i32::MAX))
                    .field("height", gst::IntRange::new(1, i32::MAX))
                    .field(
                        "framerate",
                        gst::FractionRange::new(
                            gst::Fraction::new(0, 1),
                            gst::Fraction::new(i32::MAX, 1),
                        ),
                    )
                    .build();
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .map(|t| vec![t])
                .unwrap_or_default()
            });
            T.as_ref()
        }
    }

    impl BaseSrcImpl for X11Src {
        fn start(&self) -> Result<(), gst::ErrorMessage> {
            let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
            let display = if s.display.is_empty() {
                std::env::var("DISPLAY").unwrap_or_default()
            } else {
                s.display.clone()
            };
            let screen = Screen::open(&display, s.show_pointer).map_err(|e| {
                gst::error_msg!(gst::ResourceError::OpenRead, ["X display {display}: {e:#}"])
            })?;
            if let Ok(mut s) = self.settings.lock() {
                s.display = display.clone();
            }
            if let Ok(mut st) = self.state.lock() {
                *st = Some(State {
                    screen,
                    last: None,
                    dirty: true,
                    pacer: Pacer::new(
                        s.framerate,
                        Duration::from_millis(s.repeat_ms as u64),
                        s.settle_frames,
                    ),
                    size_checked: Instant::now(),
                });
            }
            Ok(())
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            if let Ok(mut st) = self.state.lock() {
                st.take();
            }
            Ok(())
        }

        fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
            let fps = self.settings.lock().map(|s| s.framerate).unwrap_or(30);
            let caps = match self
                .state
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.screen.size()))
            {
                Some((w, h)) => self.fixed_caps(w, h, fps),
                None => self.obj().src_pad().pad_template_caps(),
            };
            Some(match filter {
                Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                None => caps,
            })
        }

        fn is_seekable(&self) -> bool {
            false
        }

        fn unlock(&self) -> Result<(), gst::ErrorMessage> {
            self.unlocked.store(true, Ordering::SeqCst);
            Ok(())
        }

        fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
            self.unlocked.store(false, Ordering::SeqCst);
            Ok(())
        }
    }

    impl PushSrcImpl for X11Src {
        fn create(
            &self,
            _buffer: Option<&mut gst::BufferRef>,
        ) -> Result<CreateSuccess, gst::FlowError> {
            'resized: loop {
                self.follow_resize()?;
                let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
                let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
                let interval = st.pacer.interval();
                loop {
                    if self.unlocked.load(Ordering::SeqCst) {
                        return Err(gst::FlowError::Flushing);
                    }
                    let now = Instant::now();
                    if now.duration_since(st.size_checked) >= SIZE_CHECK {
                        // Resized: back to the start, where the new size is
                        // taken with this state's lock let go.
                        if st.screen.current_size().ok() != Some(st.screen.size()) {
                            continue 'resized;
                        }
                        st.size_checked = now;
                    }
                    match st.pacer.next(now, st.dirty, st.last.is_some()) {
                        Next::Fresh => {
                            let buffer = self.grab(st)?;
                            st.dirty = false;
                            st.pacer.sent_fresh(now);
                            st.last = Some(buffer.clone());
                            return Ok(CreateSuccess::NewBuffer(self.stamp(buffer, interval)));
                        }
                        Next::Repeat => {
                            if let Some(last) = st.last.as_ref() {
                                counters().repeated.fetch_add(1, Ordering::Relaxed);
                                st.pacer.sent_repeat(now);
                                let again = last.copy();
                                return Ok(CreateSuccess::NewBuffer(self.stamp(again, interval)));
                            }
                        }
                        // Changed, but too soon after the last frame.
                        Next::Wait(until) if st.dirty => {
                            let wait = until.saturating_duration_since(now);
                            std::thread::sleep(wait.min(UNLOCK_CHECK));
                        }
                        Next::Wait(until) => {
                            let deadline = until.min(now + UNLOCK_CHECK);
                            match st.screen.wait(deadline, interval) {
                                Ok(Change::Drawn) => st.dirty = true,
                                Ok(Change::Nothing) => {}
                                Err(e) => return Err(self.fail(&format!("{e:#}"))),
                            }
                        }
                    }
                }
            }
        }
    }

    impl X11Src {
        fn fixed_caps(&self, w: u32, h: u32, fps: u32) -> gst::Caps {
            gst::Caps::builder("video/x-raw")
                .field("format", "BGRx")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("framerate", gst::Fraction::new(fps as i32, 1))
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build()
        }

        fn grab(&self, st: &mut State) -> Result<gst::Buffer, gst::FlowError> {
            let started = Instant::now();
            // The frame is read in place from its shared segment, which
            // is grabbed into again once this buffer is gone.
            let buffer = match st.screen.grab() {
                Ok(frame) => gst::Buffer::from_slice(frame),
                Err(e) => return Err(self.fail(&format!("{e:#}"))),
            };
            let c = counters();
            c.grabbed.fetch_add(1, Ordering::Relaxed);
            c.grab_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            Ok(buffer)
        }

        /// Leaves the timestamps to the base class (`do-timestamp`: the
        /// running time when the frame leaves `create`, as a live source
        /// should); a repeat must not carry its original's.
        fn stamp(&self, mut buffer: gst::Buffer, interval: Duration) -> gst::Buffer {
            if let Some(b) = buffer.get_mut() {
                b.set_pts(gst::ClockTime::NONE);
                b.set_dts(gst::ClockTime::NONE);
                b.set_duration(gst::ClockTime::from_nseconds(interval.as_nanos() as u64));
            }
            buffer
        }

        /// A resized screen is read again at its new size and the new caps
        /// go downstream: the encoder starts over at the new size with a
        /// keyframe carrying the new SPS, which browsers decode in-band, so
        /// every client keeps its connection (`desktop::x11::randr`).
        fn follow_resize(&self) -> Result<(), gst::FlowError> {
            {
                let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
                let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
                let now = Instant::now();
                if now.duration_since(st.size_checked) < SIZE_CHECK {
                    return Ok(());
                }
                st.size_checked = now;
                let was = st.screen.size();
                match st.screen.current_size() {
                    Ok(size) if size == was => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(self.fail(&format!("{e:#}"))),
                }
                // Read only now: this runs for every frame. Frames still
                // downstream keep the old segments alive.
                let (x_display, show_pointer) = self
                    .settings
                    .lock()
                    .map(|s| (s.display.clone(), s.show_pointer))
                    .map_err(|_| gst::FlowError::Error)?;
                st.screen = Screen::open(&x_display, show_pointer)
                    .map_err(|e| self.fail(&format!("reading the resized screen: {e:#}")))?;
                st.last = None;
                st.dirty = true;
                let now = st.screen.size();
                tracing::info!(
                    "X display {} changed size from {}x{} to {}x{}: the stream follows",
                    x_display,
                    was.0,
                    was.1,
                    now.0,
                    now.1
                );
            }
            // Negotiation asks `caps`, which takes the state's lock.
            if self.obj().negotiate() {
                Ok(())
            } else {
                Err(self.fail("the new size was not taken downstream"))
            }
        }

        /// Posts the error (the bus tells the media thread: the capture is
        /// lost and rebuilt) and ends the stream.
        fn fail(&self, why: &str) -> gst::FlowError {
            let display = self
                .settings
                .lock()
                .map(|s| s.display.clone())
                .unwrap_or_default();
            gst::element_imp_error!(
                self,
                gst::ResourceError::Read,
                ["X display {display}: {why}"]
            );
            gst::FlowError::Error
        }
    }
}
