//! `oriel publish|record start|stop|status`: one request to the running
//! agent's `/api/control`, as its controller.

use anyhow::Result;

use crate::config::{ControlAction, ControlArgs};

/// `what` is `publish` or `record`.
pub fn run(args: ControlArgs, what: &str) -> Result<()> {
    if what == "record" && args.target.is_some() {
        anyhow::bail!("`oriel record` takes no target name");
    }
    let store = args.state.open_store()?;
    let (_, token) = store.startup_controller()?;
    let request = match args.action {
        ControlAction::Status => None,
        ControlAction::Start | ControlAction::Stop => {
            let on = args.action == ControlAction::Start;
            Some(match what {
                "publish" => serde_json::json!({"publish": {"target": args.target, "on": on}}),
                _ => serde_json::json!({"record": {"on": on}}),
            })
        }
    };
    let cert = args
        .state
        .dir()?
        .join("tls")
        .join(crate::tls::cert::CERT_FILE);
    let status = crate::signalling::control::call(&args.url, &token, request, Some(&cert))?;
    let section = if what == "publish" {
        &status["publish"]
    } else {
        &status["recording"]
    };
    println!("{}", serde_json::to_string_pretty(section)?);
    Ok(())
}
