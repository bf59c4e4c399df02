//! `orielpace`: the Wayland capture's pacing, the same as the X11 damage
//! capture's (`media::pacer`). The compositor sends a frame only when the
//! screen changed; this element sends each one on at once (at most
//! `framerate` a second, always the newest, never losing the last), repeats
//! it `settle-frames` times at the full rate so the encoder refines it, and
//! then once every `repeat-ms`. So a still Wayland desktop costs what a
//! still X11 one does. `videorate` did this before, and it turned a still
//! desktop into `framerate` encodes a second and held each frame until the
//! next arrived.
//!
//! A filter with its own streaming thread (a task on the source pad): the
//! upstream thread only leaves the newest frame and the serialized events
//! here, and everything downstream is pushed from the task, in order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::media::capture_counters::counters;
use crate::media::pacer::{pacing_properties, Next, Pacer, SETTLE_FRAMES};

glib::wrapper! {
    pub struct Pace(ObjectSubclass<imp::Pace>) @extends gst::Element, gst::Object;
}

/// Makes `orielpace` known to GStreamer (after `gst::init`).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(None, "orielpace", gst::Rank::NONE, Pace::static_type())
}

mod imp {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Settings {
        framerate: u32,
        repeat_ms: u32,
        settle_frames: u32,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                framerate: 30,
                repeat_ms: 1000,
                settle_frames: SETTLE_FRAMES,
            }
        }
    }

    impl Settings {
        fn pacer(&self) -> Pacer {
            Pacer::new(
                self.framerate,
                Duration::from_millis(self.repeat_ms as u64),
                self.settle_frames,
            )
        }
    }

    struct State {
        /// The newest frame from upstream, not sent yet.
        newest: Option<gst::Buffer>,
        /// The last frame sent, for repeats.
        last: Option<gst::Buffer>,
        /// Serialized events from upstream, sent before any later frame.
        events: VecDeque<gst::Event>,
        pacer: Pacer,
        flushing: bool,
        eos: bool,
        /// What downstream said to the last push; upstream hears it.
        flow: Result<gst::FlowSuccess, gst::FlowError>,
    }

    impl State {
        fn new(settings: &Settings) -> Self {
            State {
                newest: None,
                last: None,
                events: VecDeque::new(),
                pacer: settings.pacer(),
                flushing: true,
                eos: false,
                flow: Ok(gst::FlowSuccess::Ok),
            }
        }
    }

    pub struct Pace {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        settings: Mutex<Settings>,
        state: Mutex<State>,
        wake: Condvar,
    }

    /// What the task pushes next.
    enum Out {
        Event(gst::Event),
        Frame(gst::Buffer),
    }

    impl Pace {
        fn settings(&self) -> Settings {
            self.settings.lock().map(|s| *s).unwrap_or_default()
        }

        fn state(&self) -> MutexGuard<'_, State> {
            // A panic elsewhere poisons the lock; the state is still whole.
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut st = self.state();
            if st.flushing {
                return Err(gst::FlowError::Flushing);
            }
            if st.eos {
                return Err(gst::FlowError::Eos);
            }
            st.flow?;
            if st.newest.replace(buffer).is_some() {
                counters().superseded.fetch_add(1, Ordering::Relaxed);
            }
            self.wake.notify_one();
            Ok(gst::FlowSuccess::Ok)
        }

        fn sink_event(&self, event: gst::Event) -> bool {
            use gst::EventView;
            match event.view() {
                EventView::FlushStart(_) => {
                    self.set_flushing(true);
                    let ok = self.srcpad.push_event(event);
                    let _ = self.srcpad.pause_task();
                    ok
                }
                EventView::FlushStop(_) => {
                    let ok = self.srcpad.push_event(event);
                    self.reset();
                    self.start_task();
                    ok
                }
                EventView::Caps(c) => {
                    let caps = self.with_rate(c.caps());
                    let mut st = self.state();
                    // Frames of the old format are neither sent nor repeated.
                    st.newest = None;
                    st.last = None;
                    st.events.push_back(gst::event::Caps::new(&caps));
                    self.wake.notify_one();
                    true
                }
                EventView::Segment(_) => {
                    // Frames leave stamped with the running time they leave
                    // at: a segment from 0 says exactly that.
                    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
                    self.queue(gst::event::Segment::new(&segment));
                    true
                }
                EventView::Eos(_) => {
                    self.queue(event);
                    true
                }
                _ if event.is_serialized() => {
                    self.queue(event);
                    true
                }
                _ => self.srcpad.push_event(event),
            }
        }

        fn queue(&self, event: gst::Event) {
            let mut st = self.state();
            st.events.push_back(event);
            self.wake.notify_one();
        }

        /// `caps` with this element's frame rate.
        fn with_rate(&self, caps: &gst::CapsRef) -> gst::Caps {
            let fps = self.settings().framerate.max(1) as i32;
            let mut caps = caps.to_owned();
            for s in caps.make_mut().iter_mut() {
                s.set("framerate", gst::Fraction::new(fps, 1));
            }
            caps
        }

        /// `caps` with any frame rate (what upstream may send).
        fn any_rate(caps: gst::Caps) -> gst::Caps {
            let mut caps = caps;
            for s in caps.make_mut().iter_mut() {
                s.remove_field("framerate");
            }
            caps
        }

        fn sink_query(&self, query: &mut gst::QueryRef) -> bool {
            use gst::QueryViewMut;
            match query.view_mut() {
                QueryViewMut::Caps(q) => {
                    let caps = Self::any_rate(self.srcpad.peer_query_caps(None));
                    let caps = match q.filter() {
                        Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                        None => caps,
                    };
                    q.set_result(&caps);
                    true
                }
                QueryViewMut::AcceptCaps(q) => {
                    let ok = self
                        .srcpad
                        .peer_query_accept_caps(&self.with_rate(q.caps()));
                    q.set_result(ok);
                    true
                }
                // Frames are kept for repeats: upstream allocates its own
                // rather than borrowing from a downstream pool.
                QueryViewMut::Allocation(_) => false,
                _ => gst::Pad::query_default(&self.sinkpad, Some(&*self.obj()), query),
            }
        }

        fn src_query(&self, query: &mut gst::QueryRef) -> bool {
            use gst::QueryViewMut;
            match query.view_mut() {
                QueryViewMut::Caps(q) => {
                    let caps = self.with_rate(&self.sinkpad.peer_query_caps(None));
                    let caps = match q.filter() {
                        Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                        None => caps,
                    };
                    q.set_result(&caps);
                    true
                }
                _ => gst::Pad::query_default(&self.srcpad, Some(&*self.obj()), query),
            }
        }

        fn set_flushing(&self, flushing: bool) {
            let mut st = self.state();
            st.flushing = flushing;
            self.wake.notify_all();
        }

        fn reset(&self) {
            let settings = self.settings();
            let mut st = self.state();
            *st = State::new(&settings);
            st.flushing = false;
        }

        fn start_task(&self) {
            let weak = self.obj().downgrade();
            let started = self.srcpad.start_task(move || {
                if let Some(me) = weak.upgrade() {
                    me.imp().step();
                }
            });
            if let Err(e) = started {
                gst::warning!(
                    gst::CAT_RUST,
                    imp = self,
                    "cannot start the pacing task: {e}"
                );
            }
        }

        /// One round of the task: wait for what is due, push it.
        fn step(&self) {
            let out = {
                let mut st = self.state();
                loop {
                    if st.flushing || st.eos {
                        drop(st);
                        let _ = self.srcpad.pause_task();
                        return;
                    }
                    if let Some(event) = st.events.pop_front() {
                        st.eos = matches!(event.view(), gst::EventView::Eos(_));
                        break Out::Event(event);
                    }
                    let now = Instant::now();
                    match st.pacer.next(now, st.newest.is_some(), st.last.is_some()) {
                        Next::Fresh => {
                            let Some(frame) = st.newest.take() else {
                                continue;
                            };
                            st.pacer.sent_fresh(now);
                            st.last = Some(frame.clone());
                            counters().grabbed.fetch_add(1, Ordering::Relaxed);
                            break Out::Frame(frame);
                        }
                        Next::Repeat => {
                            let Some(last) = st.last.as_ref() else {
                                continue;
                            };
                            let again = last.copy();
                            st.pacer.sent_repeat(now);
                            counters().repeated.fetch_add(1, Ordering::Relaxed);
                            break Out::Frame(again);
                        }
                        Next::Wait(until) => {
                            let wait = until.saturating_duration_since(now);
                            st = match self.wake.wait_timeout(st, wait) {
                                Ok((st, _)) => st,
                                Err(p) => p.into_inner().0,
                            };
                        }
                    }
                }
            };
            match out {
                Out::Event(event) => {
                    let _ = self.srcpad.push_event(event);
                }
                Out::Frame(frame) => {
                    let flow = self.srcpad.push(self.stamp(frame));
                    self.state().flow = flow;
                    if let Err(e) = flow {
                        self.stopped(e);
                    }
                }
            }
        }

        /// Stamped with the running time it leaves at, as a live source's
        /// frame is; a repeat must not carry its original's.
        fn stamp(&self, mut frame: gst::Buffer) -> gst::Buffer {
            let interval = self.state().pacer.interval();
            let now = self.obj().current_running_time();
            let b = frame.make_mut();
            b.set_pts(now);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::from_nseconds(interval.as_nanos() as u64));
            frame
        }

        /// Downstream refused a frame: stop, and say so unless it is only
        /// flushing or done.
        fn stopped(&self, e: gst::FlowError) {
            let _ = self.srcpad.pause_task();
            if matches!(e, gst::FlowError::Flushing | gst::FlowError::Eos) {
                return;
            }
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["the paced stream stopped: {e:?}"]
            );
            let _ = self.srcpad.push_event(gst::event::Eos::new());
        }

        fn src_activate(&self, active: bool) -> Result<(), gst::LoggableError> {
            if active {
                self.reset();
                self.start_task();
                Ok(())
            } else {
                self.set_flushing(true);
                self.srcpad
                    .stop_task()
                    .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "stopping the task: {e}"))
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Pace {
        const NAME: &'static str = "OrielPace";
        type Type = super::Pace;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let sinkpad = gst::Pad::builder_from_template(
                &klass.pad_template("sink").expect("sink template"),
            )
            .chain_function(|_, parent, buffer| {
                Pace::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |p| p.chain(buffer),
                )
            })
            .event_function(|_, parent, event| {
                Pace::catch_panic_pad_function(parent, || false, |p| p.sink_event(event))
            })
            .query_function(|_, parent, query| {
                Pace::catch_panic_pad_function(parent, || false, |p| p.sink_query(query))
            })
            .activatemode_function(|_, parent, _, active| {
                Pace::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(gst::CAT_RUST, "panicked")),
                    |p| {
                        if !active {
                            p.set_flushing(true);
                        }
                        Ok(())
                    },
                )
            })
            .build();
            let srcpad =
                gst::Pad::builder_from_template(&klass.pad_template("src").expect("src template"))
                    .event_function(|_, parent, event| {
                        Pace::catch_panic_pad_function(
                            parent,
                            || false,
                            |p| p.sinkpad.push_event(event),
                        )
                    })
                    .query_function(|_, parent, query| {
                        Pace::catch_panic_pad_function(parent, || false, |p| p.src_query(query))
                    })
                    .activatemode_function(|_, parent, _, active| {
                        Pace::catch_panic_pad_function(
                            parent,
                            || Err(gst::loggable_error!(gst::CAT_RUST, "panicked")),
                            |p| p.src_activate(active),
                        )
                    })
                    .build();
            let settings = Settings::default();
            Pace {
                sinkpad,
                srcpad,
                settings: Mutex::new(settings),
                state: Mutex::new(State::new(&settings)),
                wake: Condvar::new(),
            }
        }
    }

    impl ObjectImpl for Pace {
        fn properties() -> &'static [glib::ParamSpec] {
            static P: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                let mut specs = vec![glib::ParamSpecUInt::builder("framerate")
                    .blurb("At most this many frames a second")
                    .minimum(1)
                    .maximum(240)
                    .default_value(30)
                    .build()];
                specs.extend(pacing_properties());
                specs
            });
            P.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut s = self.settings.lock().unwrap_or_else(|p| p.into_inner());
            match pspec.name() {
                "framerate" => s.framerate = value.get().unwrap_or(30),
                "repeat-ms" => s.repeat_ms = value.get().unwrap_or(1000),
                _ => s.settle_frames = value.get().unwrap_or(SETTLE_FRAMES),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let s = self.settings();
            match pspec.name() {
                "framerate" => s.framerate.to_value(),
                "repeat-ms" => s.repeat_ms.to_value(),
                _ => s.settle_frames.to_value(),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let _ = obj.add_pad(&self.sinkpad);
            let _ = obj.add_pad(&self.srcpad);
        }
    }

    impl GstObjectImpl for Pace {}

    impl ElementImpl for Pace {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static M: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "oriel damage pacing",
                    "Filter/Video",
                    "Sends changed frames at once within a frame rate, then repeats the last one slowly",
                    "oriel",
                )
            });
            Some(&M)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::new_empty_simple("video/x-raw");
                [gst::PadDirection::Sink, gst::PadDirection::Src]
                    .into_iter()
                    .filter_map(|dir| {
                        let name = if dir == gst::PadDirection::Sink {
                            "sink"
                        } else {
                            "src"
                        };
                        gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
                    })
                    .collect()
            });
            T.as_ref()
        }
    }
}

#[cfg(test)]
mod tests;
