//! `oriel`: the command line. Parses flags (over `ORIEL_*` and the config
//! file), starts logging and GStreamer, runs one command and turns its
//! result into an exit code: 0 done, 1 failed, 2 bad configuration.

use std::process::ExitCode;

use oriel::config::file::LoadError;
use oriel::config::Command;

fn main() -> ExitCode {
    let loaded = match oriel::config::file::load(std::env::args_os()) {
        Ok(l) => l,
        Err(LoadError::Cli(e)) => e.exit(),
        Err(LoadError::File(m)) => {
            eprintln!("oriel: {m}");
            return ExitCode::from(2);
        }
    };
    if let Command::Config(_) = &loaded.cli.command {
        print!("{}", oriel::config::file::render(&loaded));
        return ExitCode::SUCCESS;
    }
    let config_file = loaded.file_found.then(|| loaded.file.clone());
    let cli = loaded.cli;
    oriel::cli::logging::init(&cli.log_level, cli.log_format);
    if let Some(file) = config_file {
        tracing::info!("configuration file {}", file.display());
    }
    if let Err(e) = gst::init() {
        eprintln!("oriel: GStreamer could not start: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = oriel::media::x11src::register().and_then(|_| oriel::media::pace::register()) {
        eprintln!("oriel: could not register oriel's capture elements: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => {
            let result = oriel::agent::serve(*args);
            leave_now(result.map_err(|e| format!("{e:#}")))
        }
        Command::Probe(args) => oriel::cli::probe::run(args),
        Command::Link(args) => oriel::cli::link::run(args),
        Command::Publish(args) => oriel::cli::control::run(args, "publish"),
        Command::Record(args) => oriel::cli::control::run(args, "record"),
        Command::Send(args) => oriel::cli::send::run(args),
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

/// Ends `serve` without running the C libraries' exit handlers. By now the
/// pipeline is down, recordings are closed and the runtime is stopped, but
/// threads GStreamer's elements started (libnice's, DTLS timers, thread
/// pools) may still be winding down; `exit()` would run OpenSSL's and
/// glib's atexit cleanups under them, one way to crash in the last
/// milliseconds (issue 21). So: flush what we wrote, then `_exit`.
fn leave_now(result: Result<(), String>) -> ! {
    use std::io::Write;
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("oriel: {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit only ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}
