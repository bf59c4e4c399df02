//! The subcommands other than `serve` (which is `crate::agent`): each one
//! reads its arguments, does one thing and returns; `main` maps the result
//! to an exit code.

pub mod control;
pub mod link;
pub mod logging;
pub mod probe;
pub mod send;
