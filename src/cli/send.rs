//! `oriel send FILE...`: the running agent offers each file to the
//! controller's page, which saves it as a download
//! (`signalling::send_socket`).

use anyhow::{bail, Context, Result};

use crate::config::SendArgs;
use crate::signalling::send_socket;

pub fn run(args: SendArgs) -> Result<()> {
    let mut files = Vec::new();
    for f in &args.files {
        let path = std::fs::canonicalize(f).with_context(|| format!("{}", f.display()))?;
        if !path.is_file() {
            bail!("{} is not a regular file", f.display());
        }
        files.push(path);
    }
    let mut failed = 0;
    send_socket::call(&args.state.dir()?, files, |a| match (&a.error, a.sent) {
        (None, Some(bytes)) => println!(
            "oriel: sent {} ({bytes} bytes) in {} ms",
            a.file,
            a.ms.unwrap_or(0)
        ),
        (Some(why), _) => {
            failed += 1;
            eprintln!("oriel: {} not sent: {why}", a.file);
        }
        _ => {}
    })?;
    if failed > 0 {
        bail!("{failed} file(s) not sent");
    }
    Ok(())
}
