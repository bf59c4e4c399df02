//! How many GStreamer objects are alive, by type, when GStreamer's `leaks`
//! tracer is active (`GST_TRACERS='leaks(filters=GstObject)'`): the churn
//! benchmark compares the counts before and after a thousand joins.
//!
//! The tracer's own `GST_LEAKS_TRACER_SIG` handlers are not used: they run
//! the listing inside the signal handler (locks and malloc in signal
//! context, which can deadlock or corrupt a busy multithreaded process).
//! Its `get-live-objects` action signal is called from an ordinary thread
//! instead.

use std::collections::BTreeMap;

use gst::glib::translate::ToGlibPtr;
use gst::prelude::*;

/// The active leaks tracer, if GStreamer was started with one.
fn tracer() -> Option<gst::Tracer> {
    gst::active_tracers()
        .into_iter()
        .find(|t| t.type_().name() == "GstLeaksTracer")
}

/// Is the leaks tracer active?
pub fn active() -> bool {
    tracer().is_some()
}

/// Live objects tracked by the leaks tracer, counted by type name; `None`
/// without the tracer.
pub fn live_objects() -> Option<BTreeMap<String, usize>> {
    let tracer = tracer()?;
    let info = tracer.emit_by_name::<gst::Structure>("get-live-objects", &[]);
    let mut counts = BTreeMap::new();
    if let Ok(list) = info.value("live-objects-list") {
        let list: *const gst::glib::gobject_ffi::GValue = list.to_glib_none().0;
        // SAFETY: `list` is a GstValueList of GstStructures, each with an
        // `object` field, as gst_leaks_tracer_get_live_objects builds it.
        // Only the GValues' type fields are read: the objects themselves
        // are never touched, since they may be finalized by their owners at
        // any moment.
        unsafe {
            let n = gst::ffi::gst_value_list_get_size(list);
            for i in 0..n {
                let entry = gst::ffi::gst_value_list_get_value(list, i);
                let s = gst::ffi::gst_value_get_structure(entry);
                if s.is_null() {
                    continue;
                }
                let v = gst::ffi::gst_structure_get_value(s, c"object".as_ptr());
                if v.is_null() {
                    continue;
                }
                let ty: gst::glib::Type = gst::glib::translate::from_glib((*v).g_type);
                *counts.entry(ty.name().to_string()).or_default() += 1;
            }
        }
    }
    // The list holds the objects without a reference of its own ("transfer
    // full" of references it never took): freeing it would unref objects
    // that are still in use. It is left allocated; this runs only when asked.
    std::mem::forget(info);
    Some(counts)
}

/// One log line's worth: `total=N Type=n ...`, commonest first.
pub fn summary(counts: &BTreeMap<String, usize>) -> String {
    let total: usize = counts.values().sum();
    let mut by_count: Vec<(&String, &usize)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out = format!("total={total}");
    for (name, n) in by_count {
        out.push_str(&format!(" {name}={n}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_commonest_first() {
        let mut c = BTreeMap::new();
        c.insert("GstPad".to_string(), 7);
        c.insert("GstBin".to_string(), 2);
        c.insert("GstQueue".to_string(), 7);
        assert_eq!(summary(&c), "total=16 GstPad=7 GstQueue=7 GstBin=2");
    }
}
