//! A plan's custom step: an executor outside Landlord (Terraform, a deploy
//! pipeline, DNS) does the work when Landlord POSTs to its `start` URL, and
//! undoes it on a POST to its `undo` URL.
//!
//! The request carries the tenant's context and an idempotency key that is
//! the same for every attempt of the step in a run (also sent as the
//! `Idempotency-Key` header): an attempt whose worker died mid-call is
//! made again, and the executor must treat a key it has seen as the same
//! piece of work. It answers with JSON:
//! - `{"status": "done", "output": {…}}`: the work is done; `output` is
//!   kept in the step's checkpoint.
//! - `{"status": "failed", "error": "…", "transient": true|false}`: a
//!   transient failure is retried like a built-in step's; a permanent one
//!   fails the step.
//! - `{"status": "accepted"}`: the work goes on after the answer (see the
//!   `callback` of the request: a URL and a one-time token, sent back in
//!   header `landlord-callback-token` with a done or failed report).
//!
//! Anything else (not JSON, another status, a 4xx) is a permanent failure
//! naming the executor: retrying cannot make a broken executor answer
//! sensibly. Transport errors, timeouts, 408, 429 and 5xx are transient.

use crate::clients::http::{TracedSend, is_transient, shorten};
use crate::step::{Outcome, Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::HttpStep;
use landlord_shared::executor::{CALLBACK_PATH, Report, new_callback_token};
use landlord_shared::store;
use serde_json::{Value, json};

/// The longest answer kept from an executor, for the checkpoint or an error.
const MAX_ANSWER: usize = 64 * 1024;

/// Start or undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Undo,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Undo => "undo",
        }
    }
}

/// The key an executor deduplicates the step's work by: the provisioning
/// run and the step.
pub fn idempotency_key(run_id: uuid::Uuid, step: &str) -> String {
    format!("landlord:{run_id}:{step}")
}

/// The JSON body of a call: who the tenant is and which work this is.
pub fn request_body(
    ctx: &StepCtx,
    step: &HttpStep,
    action: Action,
    key: &str,
    callback: Option<Value>,
) -> Value {
    let plan = ctx.run.plan.as_ref().map(|p| &p.0);
    json!({
        "action": action.as_str(),
        "step": step.name,
        "idempotency_key": key,
        "tenant": ctx.key.as_str(),
        "tenant_id": ctx.tenant_id,
        "run_id": ctx.run.id,
        "attempt": ctx.attempt,
        "plan": plan.map(|p| p.name.as_str()),
        "tier": plan.map(|p| p.tier.as_str()),
        "callback": callback,
    })
}

/// POSTs `body` to `url` and reads the executor's answer.
pub async fn call(
    ctx: &StepCtx,
    step: &HttpStep,
    url: &str,
    key: &str,
    body: &Value,
) -> Result<Report, StepError> {
    let what = format!("executor of step '{}' at {url}", step.name);
    let resp = ctx
        .deps
        .http
        .post(url)
        .header("Idempotency-Key", key)
        .json(body)
        .traced_send()
        .await
        .map_err(|e| StepError::transient(format!("{what}: {e}")))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| StepError::transient(format!("{what}: reading the answer: {e}")))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER)]);
    if !status.is_success() {
        let msg = format!("{what}: HTTP {status}: {}", shorten(&text));
        return Err(if is_transient(status) {
            StepError::transient(msg)
        } else {
            StepError::permanent(msg)
        });
    }
    if bytes.len() > MAX_ANSWER {
        return Err(StepError::permanent(format!(
            "{what}: answered more than {MAX_ANSWER} bytes"
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        StepError::permanent(format!(
            "{what} answered what is not a done, failed or accepted status ({e}): {}",
            shorten(&text)
        ))
    })
}

/// The step's checkpoint once the executor has done the work.
pub fn checkpoint(step: &HttpStep, key: &str, output: Value) -> Value {
    json!({
        "executor": step.start,
        "idempotency_key": key,
        "output": output,
    })
}

/// A failed answer as a step error.
pub fn failed(step: &HttpStep, error: &str, transient: bool) -> StepError {
    let msg = format!(
        "executor of step '{}' failed: {}",
        step.name,
        shorten(error)
    );
    if transient {
        StepError::transient(msg)
    } else {
        StepError::permanent(msg)
    }
}

/// A plan's custom step as the engine runs it. Its name in faults and
/// metrics is `http`: the plan names the step, the code is this one.
pub struct Custom(pub HttpStep);

#[async_trait]
impl Step for Custom {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        match self.start(ctx).await? {
            Outcome::Done(output) => Ok(output),
            Outcome::Accepted => Err(StepError::permanent("accepted work needs the engine")),
        }
    }

    /// Calls the executor; with a callback address, an attempt's token is
    /// armed first, so a callback that comes before the answer counts.
    async fn start(&self, ctx: &StepCtx) -> Result<Outcome, StepError> {
        let step = &self.0;
        let key = idempotency_key(ctx.run.id, &step.name);
        let callback = match &ctx.deps.cfg.callback_url {
            Some(base) => {
                let (token, hash) = new_callback_token();
                let armed = store::expect_callback(
                    &ctx.deps.master,
                    ctx.run.id,
                    &step.name,
                    ctx.attempt,
                    &hash,
                )
                .await?;
                if !armed {
                    return Err(StepError::transient("a later attempt holds the step"));
                }
                Some(json!({ "url": format!("{base}{CALLBACK_PATH}"), "token": token }))
            }
            None => None,
        };
        let accepts = callback.is_some();
        let body = request_body(ctx, step, Action::Start, &key, callback);
        match call(ctx, step, &step.start, &key, &body).await? {
            Report::Done { output } => Ok(Outcome::Done(checkpoint(step, &key, output))),
            Report::Failed { error, transient } => Err(failed(step, &error, transient)),
            Report::Accepted if accepts => Ok(Outcome::Accepted),
            Report::Accepted => Err(StepError::permanent(format!(
                "executor of step '{}' accepted the work, but this deployment gives executors \
                 no callback address (LANDLORD_CALLBACK_URL)",
                step.name
            ))),
        }
    }

    async fn compensate(&self, ctx: &StepCtx, output: Option<&Value>) -> Result<(), StepError> {
        let key = output
            .and_then(|o| o.get("idempotency_key")?.as_str())
            .map_or_else(|| idempotency_key(ctx.run.id, &self.0.name), str::to_owned);
        undo(ctx, &self.0, &key).await
    }
}

/// Undoes the step: asks the executor until it says the work is gone. An
/// `accepted` undo is still going on: a transient error, so the undo is
/// asked again after the retry delay.
pub async fn undo(ctx: &StepCtx, step: &HttpStep, key: &str) -> Result<(), StepError> {
    let Some(url) = &step.undo else {
        return Ok(());
    };
    let body = request_body(ctx, step, Action::Undo, key, None);
    match call(ctx, step, url, key, &body).await? {
        Report::Done { .. } => Ok(()),
        Report::Failed { error, transient } => Err(failed(step, &error, transient)),
        Report::Accepted => Err(StepError::transient(format!(
            "executor of step '{}' is still undoing it",
            step.name
        ))),
    }
}
