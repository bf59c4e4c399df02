//! Keeps a dead X server from killing oriel.
//!
//! `ximagesrc` talks to X through Xlib, and Xlib's answer to a lost
//! connection is `exit(1)` for the whole process, after calling the
//! application's I/O error handler. Since libX11 1.7 that exit can be
//! replaced per connection (`XSetIOErrorExitHandler`), but only by whoever
//! holds the `Display*`, and ximagesrc keeps it private. So oriel exports
//! its own `XOpenDisplay`: the dynamic linker binds GStreamer's call to it
//! (the executable comes first in symbol lookup), it opens the display
//! through the real libX11 and installs an exit handler that returns.
//! Xlib then marks the connection dead and every later call on it fails
//! fast, and the I/O error handler tells the media service which display
//! was lost, so it can rebuild the capture once the display is back.
//!
//! `build.rs` puts `XOpenDisplay` into the binary's dynamic symbol table.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

type Display = c_void;
type OpenFn = unsafe extern "C" fn(*const c_char) -> *mut Display;
type IoHandler = unsafe extern "C" fn(*mut Display) -> c_int;
type ExitHandler = unsafe extern "C" fn(*mut Display, *mut c_void);
type SetIoHandlerFn = unsafe extern "C" fn(Option<IoHandler>) -> Option<IoHandler>;
type SetExitHandlerFn = unsafe extern "C" fn(*mut Display, Option<ExitHandler>, *mut c_void);
type DisplayStringFn = unsafe extern "C" fn(*mut Display) -> *const c_char;
type UnlockFn = unsafe extern "C" fn(*mut Display);

struct Xlib {
    open: OpenFn,
    set_exit_handler: Option<SetExitHandlerFn>,
    display_string: Option<DisplayStringFn>,
    unlock: Option<UnlockFn>,
}

/// Called with the display name (`:N`) when a connection to it is lost.
type LostCallback = Box<dyn Fn(&str) + Send + Sync>;

static XLIB: OnceLock<Option<Xlib>> = OnceLock::new();
static ON_LOST: Mutex<Option<LostCallback>> = Mutex::new(None);

fn xlib() -> Option<&'static Xlib> {
    XLIB.get_or_init(load).as_ref()
}

/// Loads libX11 (it is already loaded whenever ximagesrc runs).
fn load() -> Option<Xlib> {
    // SAFETY: dlopen/dlsym with NUL-terminated names; the symbols are cast
    // to their documented Xlib signatures.
    unsafe {
        let handle = libc::dlopen(c"libX11.so.6".as_ptr(), libc::RTLD_NOW);
        if handle.is_null() {
            return None;
        }
        let sym = |name: &CStr| {
            let p = libc::dlsym(handle, name.as_ptr());
            (!p.is_null()).then_some(p)
        };
        let open = std::mem::transmute::<*mut c_void, OpenFn>(sym(c"XOpenDisplay")?);
        let set_exit_handler = sym(c"XSetIOErrorExitHandler")
            .map(|p| std::mem::transmute::<*mut c_void, SetExitHandlerFn>(p));
        let display_string =
            sym(c"XDisplayString").map(|p| std::mem::transmute::<*mut c_void, DisplayStringFn>(p));
        let unlock =
            sym(c"XUnlockDisplay").map(|p| std::mem::transmute::<*mut c_void, UnlockFn>(p));
        if let Some(set_io) = sym(c"XSetIOErrorHandler") {
            let set_io = std::mem::transmute::<*mut c_void, SetIoHandlerFn>(set_io);
            set_io(Some(on_io_error));
        }
        Some(Xlib {
            open,
            set_exit_handler,
            display_string,
            unlock,
        })
    }
}

/// Installs the I/O error handler and registers who hears about lost
/// displays. Returns false when libX11 is missing or too old (< 1.7) to
/// survive a lost connection.
pub fn install(on_lost: impl Fn(&str) + Send + Sync + 'static) -> bool {
    if let Ok(mut slot) = ON_LOST.lock() {
        *slot = Some(Box::new(on_lost));
    }
    xlib().is_some_and(|x| x.set_exit_handler.is_some())
}

unsafe extern "C" fn on_io_error(dpy: *mut Display) -> c_int {
    let name = xlib()
        .and_then(|x| x.display_string)
        // SAFETY: XDisplayString only reads the Display struct.
        .map(|f| unsafe { f(dpy) })
        .filter(|p| !p.is_null())
        // SAFETY: a NUL-terminated string owned by the Display.
        .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        .unwrap_or_default();
    tracing::warn!(display = %name, "lost the connection to the X server");
    if let Ok(slot) = ON_LOST.lock() {
        if let Some(f) = slot.as_ref() {
            f(&name);
        }
    }
    0
}

/// Replaces Xlib's `exit(1)`: returning leaves the connection marked dead.
/// Xlib took the display's user lock for the exit it expected; released
/// here, or every other thread touching the display (GStreamer freeing
/// its shared-memory images on teardown) would wait for it forever.
unsafe extern "C" fn keep_running(dpy: *mut Display, _data: *mut c_void) {
    if let Some(unlock) = xlib().and_then(|x| x.unlock) {
        // SAFETY: this thread holds the user lock (taken in _XIOError).
        unsafe { unlock(dpy) };
    }
}

/// The interposed `XOpenDisplay`: the real one, plus [`keep_running`].
///
/// # Safety
/// Same contract as Xlib's `XOpenDisplay`: `name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn XOpenDisplay(name: *const c_char) -> *mut Display {
    let Some(x) = xlib() else {
        return std::ptr::null_mut();
    };
    // SAFETY: forwarding the caller's argument to the real function.
    let dpy = unsafe { (x.open)(name) };
    if let (false, Some(set)) = (dpy.is_null(), x.set_exit_handler) {
        // SAFETY: a live Display just returned by Xlib.
        unsafe { set(dpy, Some(keep_running), std::ptr::null_mut()) };
    }
    dpy
}
