//! Where log lines go and how they look (`--log-level`, `--log-format`).

use crate::config::LogFormat;

/// Logs go to stderr. Under systemd (`JOURNAL_STREAM` set) journald stamps
/// each line and colours mean nothing, so `auto` leaves both out.
pub fn init(level: &str, format: LogFormat) {
    // zbus (under the Wayland portal code) warns about every portal
    // Request object it cannot cache properties of: noise, unless asked for.
    let level = if level.contains("zbus") {
        level.to_string()
    } else {
        format!("{level},zbus=error")
    };
    let level = level.as_str();
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| {
        eprintln!("oriel: bad --log-level `{level}`; using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if journald => builder.without_time().with_ansi(false).init(),
        LogFormat::Auto | LogFormat::Text => builder.init(),
    }
}
