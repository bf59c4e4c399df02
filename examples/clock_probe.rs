//! Clock probe for the glass-to-glass benchmark (`bench/glass.mjs`).
//!
//! Shows a band at the top-left of an X screen that paints the current wall
//! clock (CLOCK_REALTIME, in milliseconds) as large black and white blocks,
//! and repaints it every time the millisecond changes, as fast as the X
//! server takes it. A browser that decodes the band from a presented video
//! frame and subtracts the value from its own clock (same machine, same
//! clock) gets the latency from the X framebuffer to the page.
//!
//! ```text
//! cargo run --release --example clock_probe -- --display :99 --block 32
//! ```
//!
//! The pattern (the decoder in `bench/glass.mjs` follows it; keep both in
//! step): a grid of 2 rows x 32 columns of `block` x `block` cells, the band's
//! top-left corner at (0, 0) on the screen. Each row starts with the marker
//! cells white, black and ends with black, white. The 28 cells between them
//! carry 56 bits, row 0 first, most significant bit first, white = 1:
//! the time in ms modulo 2^40 (40 bits; the reader resolves the wrap against
//! its own clock), then a CRC-16/CCITT-FALSE of those 5 bytes (16 bits). A
//! frame blended from two paints, smeared by the encoder or torn fails the
//! markers, the CRC or the reader's black/white margin, and is rejected
//! rather than misread.
//!
//! Each paint is atomic on the screen: the cells are drawn into a pixmap and
//! copied to the window in one CopyArea request, so a capture never sees half
//! of a paint. After each paint a round trip (GetInputFocus) waits until the
//! server has executed it, so paints never queue up and the painted value is
//! at most the round-trip time older than the moment it became visible.
//!
//! Only the band is painted: the rest of the screen shows whatever is beneath
//! (the benchmark keeps a full-screen moving video there, so the encoder does
//! its usual work). Stops cleanly on SIGTERM or SIGINT; prints its paint rate
//! to stderr every few seconds and at exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, StackMode,
    WindowClass,
};
use x11rb::wrapper::ConnectionExt as _;

/// Columns of the grid: 2 marker cells, 28 data cells, 2 marker cells.
const COLUMNS: u16 = 32;
/// Rows of the grid.
const ROWS: u16 = 2;
/// Data cells per row.
const DATA_PER_ROW: usize = 28;
/// The time field: milliseconds modulo 2^40 (34 years).
const TIME_BITS: u32 = 40;

#[derive(Parser, Debug)]
#[command(about = "Paints the wall-clock time (ms) as black/white blocks on an X display")]
struct Args {
    /// X display to paint on (default: $DISPLAY).
    #[arg(long)]
    display: Option<String>,
    /// Cell size in pixels (a multiple of 16 keeps cells on H.264 macroblocks).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(4..=128))]
    block: u16,
    /// Minimum time between two paints, in microseconds (0: every new millisecond).
    #[arg(long, default_value_t = 0)]
    min_interval_us: u64,
    /// Print the paint rate every this many seconds (0: only at exit).
    #[arg(long, default_value_t = 5)]
    stats_every: u64,
}

/// Set by the signal handler; the paint loop checks it after every paint.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xffff, no reflection, no xorout).
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The 56 data bits for time `ms`: 40 bits of time, then the CRC-16.
fn data_bits(ms: u64) -> [bool; 2 * DATA_PER_ROW] {
    let t = ms & ((1u64 << TIME_BITS) - 1);
    let bytes = [
        (t >> 32) as u8,
        (t >> 24) as u8,
        (t >> 16) as u8,
        (t >> 8) as u8,
        t as u8,
    ];
    let word = (t << 16) | crc16(&bytes) as u64; // 56 bits
    let mut bits = [false; 2 * DATA_PER_ROW];
    for (i, bit) in bits.iter_mut().enumerate() {
        *bit = (word >> (55 - i)) & 1 == 1;
    }
    bits
}

/// Every cell of the grid, row by row: true = white.
fn cells(ms: u64) -> Vec<bool> {
    let bits = data_bits(ms);
    let mut out = Vec::with_capacity((ROWS * COLUMNS) as usize);
    for row in 0..ROWS as usize {
        out.extend([true, false]);
        out.extend_from_slice(&bits[row * DATA_PER_ROW..(row + 1) * DATA_PER_ROW]);
        out.extend([false, true]);
    }
    out
}

fn now_ms() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_millis() as u64)
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }

    let (conn, screen_num) = x11rb::connect(args.display.as_deref())
        .map_err(|e| anyhow!("cannot open X display {:?}: {e}", args.display))?;
    let screen = conn
        .setup()
        .roots
        .get(screen_num)
        .ok_or_else(|| anyhow!("X screen {screen_num} missing"))?
        .clone();
    let b = args.block;
    let (width, height) = (COLUMNS * b, ROWS * b);
    if width > screen.width_in_pixels || height > screen.height_in_pixels {
        bail!(
            "a {width}x{height} band does not fit the {}x{} screen: use a smaller --block",
            screen.width_in_pixels,
            screen.height_in_pixels
        );
    }

    let win = conn.generate_id()?;
    // Override-redirect: no window manager moves or decorates it, and a
    // window mapped last sits above the ones already there.
    conn.create_window(
        screen.root_depth,
        win,
        screen.root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        &CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(screen.black_pixel),
    )?;
    let pixmap = conn.generate_id()?;
    conn.create_pixmap(screen.root_depth, pixmap, win, width, height)?;
    let white = conn.generate_id()?;
    conn.create_gc(
        white,
        win,
        &CreateGCAux::new()
            .foreground(screen.white_pixel)
            .graphics_exposures(0),
    )?;
    let black = conn.generate_id()?;
    conn.create_gc(
        black,
        win,
        &CreateGCAux::new()
            .foreground(screen.black_pixel)
            .graphics_exposures(0),
    )?;
    conn.map_window(win)?;
    conn.sync().context("mapping the probe window")?;
    eprintln!(
        "clock_probe: painting a {width}x{height} band of {b} px cells at 0,0 on a {}x{} screen",
        screen.width_in_pixels, screen.height_in_pixels
    );

    let whole = [Rectangle {
        x: 0,
        y: 0,
        width,
        height,
    }];
    let min_interval = Duration::from_micros(args.min_interval_us);
    let started = Instant::now();
    let mut last_ms = 0u64;
    // The first paint is due at once.
    let mut last_paint = started.checked_sub(min_interval).unwrap_or(started);
    let (mut paints, mut window_paints, mut window_start) = (0u64, 0u64, started);
    let mut last_raise = started;
    let mut black_cells: Vec<Rectangle> = Vec::with_capacity((ROWS * COLUMNS) as usize);

    while !STOP.load(Ordering::SeqCst) {
        let ms = now_ms()?;
        if ms == last_ms || last_paint.elapsed() < min_interval {
            // Nothing new to show yet: wait for the next millisecond.
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        black_cells.clear();
        for (i, white_cell) in cells(ms).into_iter().enumerate() {
            if !white_cell {
                let (row, col) = (i as u16 / COLUMNS, i as u16 % COLUMNS);
                black_cells.push(Rectangle {
                    x: (col * b) as i16,
                    y: (row * b) as i16,
                    width: b,
                    height: b,
                });
            }
        }
        conn.poly_fill_rectangle(pixmap, white, &whole)?;
        conn.poly_fill_rectangle(pixmap, black, &black_cells)?;
        conn.copy_area(pixmap, win, white, 0, 0, 0, 0, width, height)?;
        // Round trip: the copy has been executed when the reply arrives.
        conn.get_input_focus()?
            .reply()
            .context("the X server went away")?;
        last_ms = ms;
        last_paint = Instant::now();
        paints += 1;
        window_paints += 1;

        if last_raise.elapsed() >= Duration::from_secs(1) {
            // Stay on top even if another client raised its window.
            conn.configure_window(win, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))?;
            last_raise = Instant::now();
        }
        if args.stats_every > 0 && window_start.elapsed() >= Duration::from_secs(args.stats_every) {
            let secs = window_start.elapsed().as_secs_f64();
            eprintln!(
                "clock_probe: paints={window_paints} seconds={secs:.1} rate={:.0}",
                window_paints as f64 / secs
            );
            window_paints = 0;
            window_start = Instant::now();
        }
    }

    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "clock_probe: stopped; total paints={paints} seconds={secs:.1} rate={:.0}",
        paints as f64 / secs.max(1e-9)
    );
    let _ = conn.destroy_window(win);
    let _ = conn.free_pixmap(pixmap);
    let _ = conn.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        // CRC-16/CCITT-FALSE of "123456789" is 0x29B1.
        assert_eq!(crc16(b"123456789"), 0x29b1);
    }

    #[test]
    fn rows_carry_markers_and_the_time_round_trips() {
        let ms = 1_796_000_123_456u64;
        let c = cells(ms);
        assert_eq!(c.len(), 64);
        for row in 0..2 {
            let r = &c[row * 32..(row + 1) * 32];
            assert_eq!((r[0], r[1], r[30], r[31]), (true, false, false, true));
        }
        let bits: Vec<bool> = (0..2)
            .flat_map(|row| c[row * 32 + 2..row * 32 + 30].to_vec())
            .collect();
        let word = bits.iter().fold(0u64, |w, &b| (w << 1) | b as u64);
        assert_eq!(word >> 16, ms & ((1 << 40) - 1));
        let t = word >> 16;
        let bytes = [
            (t >> 32) as u8,
            (t >> 24) as u8,
            (t >> 16) as u8,
            (t >> 8) as u8,
            t as u8,
        ];
        assert_eq!(word & 0xffff, crc16(&bytes) as u64);
    }
}
