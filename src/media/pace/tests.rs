//! `orielpace` in a real pipeline: appsrc stands in for the compositor
//! (frames only when something changed), appsink for the encoder.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use gst::prelude::*;

/// appsrc ! orielpace ! appsink; every frame out is sent on the channel
/// with the first byte of its data (which frame it is) and when it came.
struct Rig {
    pipeline: gst::Pipeline,
    src: gst::Element,
    out: mpsc::Receiver<(u8, Instant, gst::Caps)>,
}

impl Rig {
    fn new(props: &str) -> Rig {
        gst::init().unwrap();
        super::register().unwrap();
        let desc = format!(
            "appsrc name=src is-live=true format=time do-timestamp=true \
             caps=video/x-raw,format=BGRx,width=8,height=8,framerate=0/1 \
             ! orielpace {props} ! appsink name=sink sync=false emit-signals=true"
        );
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline.by_name("src").unwrap();
        let sink = pipeline.by_name("sink").unwrap();
        let (tx, out) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        sink.connect("new-sample", false, move |args| {
            let sink = args[0].get::<gst::Element>().ok()?;
            let sample = sink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[])?;
            let first = sample
                .buffer()
                .and_then(|b| b.map_readable().ok().map(|m| m[0]))
                .unwrap_or(0);
            let caps = sample.caps()?.to_owned();
            let _ = tx.lock().ok()?.send((first, Instant::now(), caps));
            Some(gst::FlowReturn::Ok.to_value())
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        Rig { pipeline, src, out }
    }

    fn push(&self, which: u8) {
        let buffer = gst::Buffer::from_mut_slice(vec![which; 8 * 8 * 4]);
        let flow = self
            .src
            .emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
        assert_eq!(flow, gst::FlowReturn::Ok);
    }

    /// Frames that came out within `d`.
    fn collect(&self, d: Duration) -> Vec<(u8, Instant, gst::Caps)> {
        let end = Instant::now() + d;
        let mut got = Vec::new();
        while let Ok(f) = self
            .out
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            got.push(f);
        }
        got
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn one_change_goes_at_once_then_settles_then_repeats_slowly() {
    let rig = Rig::new("framerate=50 repeat-ms=300 settle-frames=2");
    // Nothing changed yet: nothing is sent.
    assert!(rig.collect(Duration::from_millis(300)).is_empty());
    let pushed = Instant::now();
    rig.push(7);
    let got = rig.collect(Duration::from_millis(1000));
    assert!(got.iter().all(|f| f.0 == 7));
    let first = got.first().expect("the change came out");
    assert!(
        first.1 - pushed < Duration::from_millis(100),
        "the change waited {:?}",
        first.1 - pushed
    );
    // 1 + 2 settle repeats within ~40 ms, then one every 300 ms: 3 more in
    // the second; far fewer than the 50 a fixed rate would have sent.
    assert!((4..=8).contains(&got.len()), "{} frames", got.len());
    let fps = first
        .2
        .structure(0)
        .unwrap()
        .get::<gst::Fraction>("framerate")
        .unwrap();
    assert_eq!(fps, gst::Fraction::new(50, 1));
}

#[test]
fn a_burst_is_held_to_the_rate_and_its_last_frame_arrives() {
    let rig = Rig::new("framerate=20 repeat-ms=5000 settle-frames=0");
    let start = Instant::now();
    for i in 1..=30u8 {
        rig.push(i);
        std::thread::sleep(Duration::from_millis(2));
    }
    // About 60 ms of changes; longer on a loaded machine, whose sleeps
    // stretch: the bound follows the burst as it was.
    let burst = start.elapsed();
    let got = rig.collect(Duration::from_millis(400));
    // At 20 fps: one fresh frame per 50 ms of the burst, then the last one
    // of the burst once its turn comes.
    let most = burst.as_millis() as usize / 50 + 4;
    assert!(
        (2..=most).contains(&got.len()),
        "{:?} from a burst of {burst:?}",
        got.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert_eq!(got.last().map(|f| f.0), Some(30));
    for pair in got.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(45),
            "two frames {:?} apart",
            pair[1].1 - pair[0].1
        );
    }
}
