//! A WHIP client (RFC 9725): the offer goes in one POST and the answer
//! comes back with the URL of the session's resource; later candidates go
//! by PATCH where the endpoint takes them; DELETE ends the session.

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use crate::media::ice::Secret;

/// One published session at a WHIP endpoint.
pub struct Resource {
    http: reqwest::Client,
    url: String,
    token: Option<Secret>,
    /// Cleared once the endpoint said it takes no trickled candidates.
    trickle: bool,
}

/// Longest part of an endpoint's error body quoted in the log.
const QUOTE: usize = 200;

fn with_token(req: reqwest::RequestBuilder, token: &Option<Secret>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.header(AUTHORIZATION, format!("Bearer {}", t.expose())),
        None => req,
    }
}

/// POSTs `offer` to `endpoint`; returns the resource and the SDP answer.
pub async fn publish(
    http: reqwest::Client,
    endpoint: &str,
    token: Option<Secret>,
    offer: String,
) -> Result<(Resource, String)> {
    let reply = with_token(http.post(endpoint), &token)
        .header(CONTENT_TYPE, "application/sdp")
        .body(offer)
        .send()
        .await
        .with_context(|| format!("reaching the WHIP endpoint {endpoint}"))?;
    let status = reply.status();
    let location = reply
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = reply.text().await.unwrap_or_default();
    if status != StatusCode::CREATED {
        let said: String = body.trim().chars().take(QUOTE).collect();
        let hint = match status.as_u16() {
            401 | 403 => " (check --whip-token)",
            404 => " (check the endpoint URL)",
            _ => "",
        };
        bail!(
            "the WHIP endpoint refused the offer: HTTP {status}{hint}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        );
    }
    if !body.starts_with("v=0") {
        bail!("the WHIP endpoint answered 201 without an SDP answer");
    }
    let location = location.ok_or_else(|| anyhow!("the WHIP endpoint gave no Location"))?;
    let url = reqwest::Url::parse(endpoint)
        .and_then(|base| base.join(&location))
        .map_err(|e| anyhow!("the WHIP resource URL `{location}` is not valid: {e}"))?;
    Ok((
        Resource {
            http,
            url: url.to_string(),
            token,
            trickle: true,
        },
        body,
    ))
}

impl Resource {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends late candidates as an RFC 8840 fragment; an endpoint that
    /// takes none (405, 501, ...) is not asked again.
    pub async fn trickle(&mut self, fragment: String) -> Result<()> {
        if !self.trickle {
            return Ok(());
        }
        let reply = with_token(self.http.patch(&self.url), &self.token)
            .header(CONTENT_TYPE, "application/trickle-ice-sdpfrag")
            .body(fragment)
            .send()
            .await
            .context("trickling candidates to the WHIP resource")?;
        match reply.status().as_u16() {
            200..=299 => Ok(()),
            code @ (400 | 405 | 415 | 422 | 501) => {
                tracing::debug!(code, "the WHIP endpoint takes no trickled candidates");
                self.trickle = false;
                Ok(())
            }
            code => bail!("the WHIP resource refused candidates: HTTP {code}"),
        }
    }

    /// Ends the session at the endpoint.
    pub async fn delete(self) -> Result<()> {
        let reply = with_token(self.http.delete(&self.url), &self.token)
            .send()
            .await
            .context("deleting the WHIP resource")?;
        if !reply.status().is_success() {
            bail!("deleting the WHIP resource: HTTP {}", reply.status());
        }
        Ok(())
    }
}
