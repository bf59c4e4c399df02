//! The agent's watchdogs (a capture that stopped, a branch that made no
//! offer, a peer gone silent, a display that does not answer) fire after
//! fixed times fit for a real desktop. Under Valgrind everything runs 20-50
//! times slower and they would fire on a healthy agent, so
//! `ORIEL_WATCHDOG_SCALE` (1-100, default 1) stretches them all. It is for
//! the Valgrind churn benchmark (`make bench-churn-valgrind`), not a tuning
//! knob: it is read once and not in `--help`.

use std::sync::OnceLock;
use std::time::Duration;

fn factor() -> u32 {
    static FACTOR: OnceLock<u32> = OnceLock::new();
    *FACTOR.get_or_init(|| {
        parse(std::env::var("ORIEL_WATCHDOG_SCALE").ok().as_deref()).unwrap_or_else(|why| {
            tracing::warn!("ORIEL_WATCHDOG_SCALE ignored: {why}");
            1
        })
    })
}

fn parse(v: Option<&str>) -> Result<u32, String> {
    match v.map(str::trim) {
        None | Some("") => Ok(1),
        Some(s) => match s.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(format!("`{s}` is not a whole number from 1 to 100")),
        },
    }
}

/// `d` stretched by the watchdog scale.
pub fn scaled(d: Duration) -> Duration {
    d * factor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_a_small_whole_number() {
        assert_eq!(parse(None), Ok(1));
        assert_eq!(parse(Some(" 40 ")), Ok(40));
        assert!(parse(Some("0")).is_err());
        assert!(parse(Some("101")).is_err());
        assert!(parse(Some("2.5")).is_err());
    }
}
