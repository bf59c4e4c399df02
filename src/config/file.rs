//! The configuration file and the precedence of every setting:
//! command line > `ORIEL_*` environment > `config.toml` > built-in default.
//!
//! The file needs no schema of its own: every flag that has an `ORIEL_*`
//! variable is also a file key, spelled like the flag (`bitrate = 6000`,
//! `listen = "0.0.0.0:8443"`). Clap parses the command line and environment
//! first; file values then fill in only what is still at its default, and go
//! through the flag's own value parser, so a file value is checked exactly
//! like the same value typed on the command line.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use crate::config::Cli;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    /// The environment variable's name.
    Env(String),
    File {
        path: PathBuf,
        line: usize,
    },
    Default,
    /// No value and no default (an optional setting left out).
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine => write!(f, "command line"),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => write!(f, "default"),
            Source::Unset => write!(f, "not set"),
        }
    }
}

/// One setting of the command that runs, as `oriel config` shows it.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    /// The value as text (lists joined with `,`); `None` when unset.
    pub value: Option<String>,
    pub source: Source,
}

/// The parsed command line with every layer applied.
pub struct Loaded {
    pub cli: Cli,
    /// The configuration file read (or looked for).
    pub file: PathBuf,
    pub file_found: bool,
    /// The settings of the subcommand that runs, in `--help` order.
    pub settings: Vec<Setting>,
}

#[derive(Debug)]
pub enum LoadError {
    /// Bad command line or environment: clap's own message and exit code.
    Cli(clap::Error),
    /// Bad configuration file: the message names the file, line and key.
    File(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Cli(e) => write!(f, "{e}"),
            LoadError::File(m) => write!(f, "{m}"),
        }
    }
}

/// `$XDG_CONFIG_HOME/oriel/config.toml`, else `~/.config/oriel/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("oriel").join("config.toml"))
}

/// Parses `args` (with the program name first) through all four layers.
pub fn load<I, T>(args: I) -> Result<Loaded, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let (cmd, matches) = parse_args(&args)?;
    let explicit = matches.get_one::<PathBuf>("config").cloned();
    let file = match explicit.clone().or_else(default_path) {
        Some(p) => p,
        None => PathBuf::from("config.toml"),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => None,
        Err(e) => {
            return Err(LoadError::File(format!(
                "cannot read the configuration file {}: {e}",
                file.display()
            )))
        }
    };
    apply(cmd, args, matches, file, text.as_deref())
}

/// What [`load`] does once it has read the file: `text` is the file's
/// content (`None`: there is none) and `file` only names it in messages.
/// The same checks and precedence, without the filesystem; public for the
/// fuzzer (`fuzz/`) too.
pub fn load_text<I, T>(args: I, file: &Path, text: Option<&str>) -> Result<Loaded, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let (cmd, matches) = parse_args(&args)?;
    apply(cmd, args, matches, file.to_path_buf(), text)
}

/// The built command and clap's reading of the command line and environment.
fn parse_args(args: &[OsString]) -> Result<(&'static clap::Command, clap::ArgMatches), LoadError> {
    let cmd = built_command();
    let matches = cmd
        .clone()
        .try_get_matches_from(args)
        .map_err(LoadError::Cli)?;
    Ok((cmd, matches))
}

/// Building clap's command tree is most of a load's cost (the config
/// fuzzer ran at ~850 inputs a second building it for each), so it is
/// built once.
fn built_command() -> &'static clap::Command {
    static BUILT: OnceLock<clap::Command> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cmd = Cli::command();
        cmd.build();
        cmd
    })
}

/// Puts the file's values under the command line and environment.
fn apply(
    cmd: &clap::Command,
    args: Vec<OsString>,
    matches: clap::ArgMatches,
    file: PathBuf,
    text: Option<&str>,
) -> Result<Loaded, LoadError> {
    let file_found = text.is_some();
    let entries = match text {
        Some(text) => parse_file(&file, text, settable_args())?,
        None => BTreeMap::new(),
    };

    // The subcommand that runs, and what clap made of its arguments.
    let mut leaf_cmd = cmd;
    let mut leaf_matches = &matches;
    while let Some((name, sub)) = leaf_matches.subcommand() {
        match leaf_cmd.find_subcommand(name) {
            Some(c) => {
                leaf_cmd = c;
                leaf_matches = sub;
            }
            None => break,
        }
    }

    let mut injected: Vec<OsString> = Vec::new();
    let mut sources: Vec<(String, clap::Id, Source)> = Vec::new();
    for arg in leaf_cmd.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        if long == "config" {
            continue;
        }
        let source = match leaf_matches.value_source(arg.get_id().as_str()) {
            Some(ValueSource::CommandLine) => Source::CommandLine,
            Some(ValueSource::EnvVariable) => Source::Env(env.to_string_lossy().into_owned()),
            found => match entries.get(long) {
                Some(entry) => {
                    for v in &entry.values {
                        if is_flag(arg) {
                            if v == "true" {
                                injected.push(format!("--{long}").into());
                            }
                        } else {
                            injected.push(format!("--{long}={v}").into());
                        }
                    }
                    Source::File {
                        path: file.clone(),
                        line: entry.line,
                    }
                }
                None if found == Some(ValueSource::DefaultValue) => Source::Default,
                None => Source::Unset,
            },
        };
        sources.push((long.to_string(), arg.get_id().clone(), source));
    }

    let final_matches = if injected.is_empty() {
        matches
    } else {
        // Flags go before a `--`, if the command line has one.
        let mut all = args.clone();
        let at = all.iter().position(|a| a == "--").unwrap_or(all.len());
        all.splice(at..at, injected);
        cmd.clone()
            .try_get_matches_from(&all)
            .map_err(LoadError::Cli)?
    };
    let cli = Cli::from_arg_matches(&final_matches).map_err(LoadError::Cli)?;

    let mut leaf = &final_matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    let settings = sources
        .into_iter()
        .map(|(key, id, source)| {
            // Values that hold commas themselves (publish targets) are
            // listed with the `;` their variable takes.
            let sep = if id.as_str() == "publish" { ";" } else { "," };
            let value = leaf.try_get_raw(id.as_str()).ok().flatten().map(|vals| {
                vals.map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(sep)
            });
            let source = match (&source, &value) {
                (Source::Default, None) => Source::Unset,
                _ => source,
            };
            Setting { key, value, source }
        })
        .collect();
    Ok(Loaded {
        cli,
        file,
        file_found,
        settings,
    })
}

/// Every flag that is a setting (it has an `ORIEL_*` variable), in any
/// subcommand, by its long name; found once, like the command.
fn settable_args() -> &'static BTreeMap<String, Arg> {
    static SETTABLE: OnceLock<BTreeMap<String, Arg>> = OnceLock::new();
    SETTABLE.get_or_init(|| settable_in(built_command()))
}

fn settable_in(cmd: &clap::Command) -> BTreeMap<String, Arg> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, Arg>) {
        for arg in cmd.get_arguments() {
            if let (Some(long), Some(_)) = (arg.get_long(), arg.get_env()) {
                if long != "config" {
                    out.entry(long.to_string()).or_insert_with(|| arg.clone());
                }
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(cmd, &mut out);
    out
}

/// A file key's values as command-line text, and where it was written.
#[derive(Debug)]
struct Entry {
    values: Vec<String>,
    line: usize,
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

fn takes_many(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some()
}

/// What TOML type a flag's value must have.
fn expected(arg: &Arg) -> &'static str {
    if is_flag(arg) {
        return "a boolean (true or false)";
    }
    let t = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
    ];
    if integers.iter().any(|i| t == *i) {
        "an integer"
    } else {
        "a string"
    }
}

fn parse_file(
    path: &Path,
    text: &str,
    settable: &BTreeMap<String, Arg>,
) -> Result<BTreeMap<String, Entry>, LoadError> {
    let where_ = |offset: usize| format!("{}:{}", path.display(), line_of(text, offset));
    let table: BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| where_(s.start))
                .unwrap_or_else(|| path.display().to_string());
            LoadError::File(format!("{at}: not valid TOML: {}", e.message()))
        })?;
    let mut out = BTreeMap::new();
    for (key, spanned) in table {
        let at = where_(spanned.span().start);
        if spanned.get_ref().is_table() {
            return Err(LoadError::File(format!(
                "{at}: `{key}` is a table: sections are not used, write keys at the top level (e.g. `bitrate = 6000`)"
            )));
        }
        let Some(arg) = settable.get(&key) else {
            let hint = closest(&key, settable.keys())
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(LoadError::File(format!(
                "{at}: unknown key `{key}`{hint}; keys are the long flag names of `oriel serve --help`"
            )));
        };
        let want = expected(arg);
        let bad_type = |found: &toml::Value| {
            LoadError::File(format!(
                "{at}: `{key}` must be {want}{}, not {}",
                if takes_many(arg) {
                    " or a list of them"
                } else {
                    ""
                },
                type_name(found)
            ))
        };
        let items: Vec<&toml::Value> = match spanned.get_ref() {
            toml::Value::Array(items) if takes_many(arg) => items.iter().collect(),
            other => vec![other],
        };
        let mut values = Vec::new();
        for item in items {
            let text = match (want, item) {
                ("a boolean (true or false)", toml::Value::Boolean(b)) => b.to_string(),
                ("an integer", toml::Value::Integer(i)) => i.to_string(),
                ("a string", toml::Value::String(s)) => s.clone(),
                _ => return Err(bad_type(item)),
            };
            if !is_flag(arg) {
                check_value(arg, &text)
                    .map_err(|why| LoadError::File(format!("{at}: `{key}` = {item}: {why}")))?;
            }
            values.push(text);
        }
        out.insert(
            key,
            Entry {
                values,
                line: line_of(text, spanned.span().start),
            },
        );
    }
    Ok(out)
}

/// Runs the flag's own value parser on `value`.
fn check_value(arg: &Arg, value: &str) -> Result<(), String> {
    // With the flag's delimiter too: the command line splits the value on
    // it, so each piece must pass (a `;` inside one `publish` entry made
    // two targets there while the file check saw one; found by fuzzing).
    let probe = clap::Command::new("oriel").no_binary_name(true).arg(
        Arg::new("value")
            .long("value")
            .value_parser(arg.get_value_parser().clone())
            .value_delimiter(arg.get_value_delimiter())
            .action(ArgAction::Append),
    );
    match probe.try_get_matches_from([OsString::from(format!("--value={value}"))]) {
        Ok(_) => Ok(()),
        Err(e) => Err(match std::error::Error::source(&e) {
            Some(inner) => inner.to_string(),
            None => {
                let valid: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .map(|p| p.get_name().to_string())
                    .collect();
                if valid.is_empty() {
                    first_line(&e.to_string())
                } else {
                    format!("expected one of {}", valid.join(", "))
                }
            }
        }),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or(s)
        .trim_start_matches("error: ")
        .to_string()
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The known key nearest to a misspelt one, when it is near enough.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `oriel config`: the effective settings of `serve`, one per line, with
/// where each came from. Secrets are not printed.
pub fn render(loaded: &Loaded) -> String {
    let mut out = format!(
        "# configuration file: {}{}\n",
        loaded.file.display(),
        if loaded.file_found {
            ""
        } else {
            " (not found)"
        }
    );
    let width = loaded
        .settings
        .iter()
        .map(|s| s.key.len())
        .max()
        .unwrap_or(0);
    for s in &loaded.settings {
        let value = match &s.value {
            None => "-".to_string(),
            Some(_) if is_secret(&s.key) => "(hidden)".to_string(),
            Some(v) => v.clone(),
        };
        out.push_str(&format!(
            "{:<width$}  {:<28}  # {}\n",
            s.key, value, s.source
        ));
    }
    out
}

fn is_secret(key: &str) -> bool {
    ["secret", "password", "token", "pin"]
        .iter()
        .any(|word| key.split('-').any(|part| part == *word))
}
