//! `oriel send` to the running agent: a Unix socket in the state directory
//! (`agent.sock`, only the user's own processes reach it), one request a
//! connection. The client writes one JSON line, `{"files":[PATH,...]}`
//! (absolute paths); the agent answers one JSON line per file as it goes,
//! `{"file":NAME,"sent":BYTES,"ms":T}` or `{"file":NAME,"error":WHY}`,
//! then closes. A path is read by the agent, which runs as the same user.
//! Local only by design: nothing on the network can name a file to send.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::media::files_send::Outbox;

pub const SOCKET: &str = "agent.sock";
/// A request line longer than this is refused (paths of 4 KiB, a few hundred).
const MAX_REQUEST: u64 = 256 << 10;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub files: Vec<PathBuf>,
}

/// One line of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The agent's end: listens on `<state_dir>/agent.sock` on its own thread
/// until the agent exits (the socket file goes with `Listening`'s drop).
pub struct Listening {
    path: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub fn listen(state_dir: &Path, outbox: Arc<Outbox>) -> Result<Listening> {
    let path = state_dir.join(SOCKET);
    // One left by an agent that died; a live one would still answer.
    if UnixStream::connect(&path).is_ok() {
        bail!("another agent answers on {}", path.display());
    }
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("oriel-send".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(stream, &outbox) {
                    tracing::debug!("oriel send: {e:#}");
                }
            }
        })?;
    Ok(Listening { path })
}

fn serve(stream: UnixStream, outbox: &Outbox) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let mut out = &stream;
    let mut answer = |a: Answer| -> Result<()> {
        let mut text = serde_json::to_string(&a)?;
        text.push('\n');
        out.write_all(text.as_bytes())?;
        Ok(())
    };
    let request: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            return answer(Answer {
                file: String::new(),
                sent: None,
                ms: None,
                error: Some(format!("not a send request: {e}")),
            })
        }
    };
    for path in request.files {
        let file = path.display().to_string();
        let a = if !path.is_absolute() {
            Answer {
                file,
                sent: None,
                ms: None,
                error: Some("not an absolute path".into()),
            }
        } else {
            match outbox.send(&path) {
                Ok(s) => Answer {
                    file,
                    sent: Some(s.bytes),
                    ms: Some(s.took.as_millis() as u64),
                    error: None,
                },
                Err(e) => Answer {
                    file,
                    sent: None,
                    ms: None,
                    error: Some(format!("{e:#}")),
                },
            }
        };
        answer(a)?;
    }
    Ok(())
}

/// The client's end: sends `files` and calls `each` with every answer.
pub fn call(state_dir: &Path, files: Vec<PathBuf>, mut each: impl FnMut(&Answer)) -> Result<()> {
    let path = state_dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "no running agent answers on {} (is `oriel serve` running with this --state-dir?)",
            path.display()
        )
    })?;
    let mut line = serde_json::to_string(&Request { files })?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    for line in BufReader::new(stream).lines() {
        let answer: Answer = serde_json::from_str(&line?).context("the agent's answer")?;
        each(&answer);
    }
    Ok(())
}
