//! Resizing an X screen through RandR: the mode for the new size (created
//! on our connection when the server has none, as `xrandr --newmode` and
//! `--addmode` would), the first output's CRTC set to it, the screen set
//! to its size. A mode lives while the connection that created it does or
//! an output uses it, so one connection is kept for every resize.
//!
//! Xvfb's screen can never grow past the size it was started with (its
//! framebuffer is allocated once): oriel starts its own at the largest
//! size and sets the wanted one at once (`desktop::xvfb`).

use anyhow::{anyhow, bail, Context, Result};
use x11rb::connection::RequestConnection;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

/// The smallest screen oriel sets: a phone held upright is wider.
pub const MIN_SIDE: u16 = 240;

pub struct Randr {
    conn: RustConnection,
    root: Window,
    output: randr::Output,
    crtc: randr::Crtc,
    /// The largest screen the server allows.
    max: (u16, u16),
    /// The DPI the screen reports, kept as it was.
    dpi: f64,
}

impl Randr {
    pub fn open(display: &str) -> Result<Self> {
        let (conn, s) = super::open(display)?;
        let root = s.root;
        let dpi = if s.width_in_millimeters > 0 {
            s.width_in_pixels as f64 * 25.4 / s.width_in_millimeters as f64
        } else {
            96.0
        };
        if conn
            .extension_information(randr::X11_EXTENSION_NAME)?
            .is_none()
        {
            bail!("display {display} has no RandR");
        }
        let v = conn.randr_query_version(1, 3)?.reply()?;
        if (v.major_version, v.minor_version) < (1, 2) {
            bail!(
                "display {display} has RandR {}.{}: resizing needs 1.2",
                v.major_version,
                v.minor_version
            );
        }
        let range = conn.randr_get_screen_size_range(root)?.reply()?;
        let res = conn.randr_get_screen_resources_current(root)?.reply()?;
        let output = *res
            .outputs
            .first()
            .ok_or_else(|| anyhow!("display {display} has no RandR output"))?;
        let info = conn.randr_get_output_info(output, CURRENT_TIME)?.reply()?;
        let crtc = if info.crtc != 0 {
            info.crtc
        } else {
            *info
                .crtcs
                .first()
                .ok_or_else(|| anyhow!("display {display}'s output has no CRTC"))?
        };
        Ok(Randr {
            conn,
            root,
            output,
            crtc,
            max: (range.max_width, range.max_height),
            dpi: if dpi.is_finite() && dpi > 1.0 {
                dpi
            } else {
                96.0
            },
        })
    }

    /// The largest size the screen can take.
    pub fn max(&self) -> (u16, u16) {
        self.max
    }

    /// What `want` becomes on this screen: within the server's range and
    /// ours, even on both sides (4:2:0 encoders need that).
    pub fn fit(&self, want: (u32, u32)) -> (u16, u16) {
        fit(want, self.max)
    }

    /// The screen's size now.
    pub fn current(&self) -> Result<(u16, u16)> {
        let g = self.conn.get_geometry(self.root)?.reply()?;
        Ok((g.width, g.height))
    }

    /// Makes the screen `want` (fitted first); the size it now has.
    pub fn resize(&self, want: (u32, u32)) -> Result<(u16, u16)> {
        let (w, h) = self.fit(want);
        let (cw, ch) = self.current()?;
        if (cw, ch) == (w, h) {
            return Ok((w, h));
        }
        let mode = self.mode_for(w, h)?;
        let mm = |px: u16| ((px as f64) * 25.4 / self.dpi).round().max(1.0) as u32;
        // The screen must hold the CRTC at every step: grow it first, or
        // shrink it after.
        if w > cw || h > ch {
            self.screen_size(w.max(cw), h.max(ch), &mm)?;
        }
        let reply = self
            .conn
            .randr_set_crtc_config(
                self.crtc,
                CURRENT_TIME,
                CURRENT_TIME,
                0,
                0,
                mode,
                randr::Rotation::ROTATE0,
                &[self.output],
            )?
            .reply()
            .context("setting the CRTC to the new mode")?;
        if reply.status != randr::SetConfig::SUCCESS {
            bail!("the X server refused the new mode ({:?})", reply.status);
        }
        self.screen_size(w, h, &mm)?;
        self.current()
    }

    fn screen_size(&self, w: u16, h: u16, mm: &dyn Fn(u16) -> u32) -> Result<()> {
        self.conn
            .randr_set_screen_size(self.root, w, h, mm(w), mm(h))?
            .check()
            .with_context(|| format!("setting the screen to {w}x{h}"))
    }

    /// The server's mode of this size, or a new one on our output.
    fn mode_for(&self, w: u16, h: u16) -> Result<randr::Mode> {
        let res = self
            .conn
            .randr_get_screen_resources_current(self.root)?
            .reply()?;
        let info = self
            .conn
            .randr_get_output_info(self.output, CURRENT_TIME)?
            .reply()?;
        if let Some(m) = res
            .modes
            .iter()
            .find(|m| (m.width, m.height) == (w, h) && info.modes.contains(&m.id))
        {
            return Ok(m.id);
        }
        let name = format!("oriel-{w}x{h}");
        let existing = res.modes.iter().find(|m| (m.width, m.height) == (w, h));
        let mode = match existing {
            Some(m) => m.id,
            None => {
                // A virtual screen has no timings; a 60 Hz clock keeps
                // programs that compute the refresh rate sane.
                let (htotal, vtotal) = (w.saturating_add(160), h.saturating_add(30));
                let info = randr::ModeInfo {
                    id: 0,
                    width: w,
                    height: h,
                    dot_clock: htotal as u32 * vtotal as u32 * 60,
                    hsync_start: w.saturating_add(48),
                    hsync_end: w.saturating_add(80),
                    htotal,
                    hskew: 0,
                    vsync_start: h.saturating_add(3),
                    vsync_end: h.saturating_add(8),
                    vtotal,
                    name_len: name.len() as u16,
                    mode_flags: randr::ModeFlag::HSYNC_POSITIVE | randr::ModeFlag::VSYNC_NEGATIVE,
                };
                self.conn
                    .randr_create_mode(self.root, info, name.as_bytes())?
                    .reply()
                    .with_context(|| format!("creating the mode {name}"))?
                    .mode
            }
        };
        self.conn
            .randr_add_output_mode(self.output, mode)?
            .check()
            .with_context(|| format!("adding the mode {name} to the output"))?;
        Ok(mode)
    }
}

/// `want` within MIN_SIDE..=`max`, even on both sides.
pub fn fit(want: (u32, u32), max: (u16, u16)) -> (u16, u16) {
    let side = |v: u32, max: u16| -> u16 {
        let max = (max & !1).max(2);
        let v = v.clamp(MIN_SIDE as u32, max as u32) as u16;
        (v & !1).max(2)
    };
    (side(want.0, max.0), side(want.1, max.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desktop::xvfb::VirtualDisplay;

    #[test]
    fn sizes_are_fitted_to_the_screen_and_made_even() {
        assert_eq!(fit((1921, 1081), (3840, 2160)), (1920, 1080));
        assert_eq!(fit((10, 10), (3840, 2160)), (MIN_SIDE, MIN_SIDE));
        assert_eq!(fit((9999, 9999), (3840, 2161)), (3840, 2160));
        assert_eq!(fit((u32::MAX, 0), (1280, 720)), (1280, MIN_SIDE));
    }

    #[test]
    fn an_xvfb_screen_takes_new_sizes_up_and_down_to_its_largest() {
        let vd = VirtualDisplay::start(1600, 1000, None, Vec::new()).expect("Xvfb");
        let r = Randr::open(&vd.name).expect("randr");
        assert_eq!(r.max(), (1600, 1000));
        assert_eq!(r.resize((1280, 720)).expect("shrink"), (1280, 720));
        assert_eq!(r.resize((1001, 777)).expect("an odd size"), (1000, 776));
        assert_eq!(
            r.resize((1600, 1000)).expect("back to the largest"),
            (1600, 1000)
        );
        assert_eq!(
            r.resize((4000, 4000)).expect("over the largest"),
            (1600, 1000)
        );
        // The same mode again, from a second connection (the first one's
        // modes are on the output now).
        drop(r);
        let r = Randr::open(&vd.name).expect("randr again");
        assert_eq!(
            r.resize((1000, 776)).expect("a mode made before"),
            (1000, 776)
        );
    }
}
