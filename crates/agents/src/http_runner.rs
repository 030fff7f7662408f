//! [`HttpRunner`]: plays runs by asking an OpenAI-compatible chat endpoint
//! (`POST {base}/v1/chat/completions`), selected with `AGENT_RUNNER=http`.
//!
//! It is deliberately plain: it has no tools and no planning of its own.
//! Without a given plan a run is one phase whose one step asks the model the
//! task. Each `think` or `tool` step sends the task, the step and any injected
//! instruction, and the reply becomes a thinking step (a tool step is asked as
//! text: nothing is executed); the reply to the plan's last step is the run's
//! result. `approval`, `fail` and `finish` steps are played as the local
//! runner plays them. The `usage` of each response is reported as the step's
//! tokens under the configured billing provider and model, so the model needs
//! a price in billing's price table or the step fails.

use crate::plan::{Phase, Plan, PlanStep, StepTokens};
use crate::runner::{
    AgentRunner, ApprovalNeeded, RunnerError, StepContext, StepOutcome, StepOutput,
};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::time::Duration;

/// How the runner reaches its endpoint.
#[derive(Clone)]
pub struct HttpRunnerConfig {
    /// The endpoint's base URL (`https://api.example.com` or `.../v1`), http or https.
    pub base_url: String,
    /// The model asked, and the one usage is recorded under.
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Billing's provider usage is recorded under: `anthropic` or `google`.
    pub provider: String,
    /// How long one request may take; keep it under the worker's claim lease.
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRunnerConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("provider", &self.provider)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why an [`HttpRunnerConfig`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum HttpRunnerConfigError {
    /// Not an http(s) URL.
    #[error("AGENT_HTTP_BASE_URL must be an http or https URL")]
    BaseUrl,
    /// No model.
    #[error("AGENT_HTTP_MODEL must not be empty")]
    Model,
    /// Not a provider billing prices.
    #[error("AGENT_HTTP_PROVIDER must be anthropic or google")]
    Provider,
    /// The HTTP client could not be built (TLS set-up).
    #[error("the HTTP client cannot be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// Asks an OpenAI-compatible chat endpoint, one request per step.
#[derive(Clone)]
pub struct HttpRunner {
    client: reqwest::Client,
    url: reqwest::Url,
    model: String,
    api_key: Option<String>,
    provider: String,
}

impl std::fmt::Debug for HttpRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRunner")
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl HttpRunner {
    /// A runner for `config`.
    ///
    /// # Errors
    /// When the base URL is not http(s), the model is empty, the provider is
    /// not one billing prices, or the client cannot be built.
    pub fn new(config: HttpRunnerConfig) -> Result<Self, HttpRunnerConfigError> {
        let base = reqwest::Url::parse(config.base_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or(HttpRunnerConfigError::BaseUrl)?;
        let path = base.path().trim_end_matches('/');
        let path = if path.ends_with("/v1") {
            format!("{path}/chat/completions")
        } else {
            format!("{path}/v1/chat/completions")
        };
        let mut url = base.clone();
        url.set_path(&path);
        let model = config.model.trim().to_owned();
        if model.is_empty() {
            return Err(HttpRunnerConfigError::Model);
        }
        if !matches!(config.provider.as_str(), "anthropic" | "google") {
            return Err(HttpRunnerConfigError::Provider);
        }
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        Ok(Self {
            client,
            url,
            model,
            api_key: config.api_key.filter(|k| !k.is_empty()),
            provider: config.provider,
        })
    }

    /// The endpoint asked: the base URL with `/v1/chat/completions`.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    async fn ask(&self, prompt: String) -> Result<(String, Option<Usage>), RunnerError> {
        let body = json!({
            "model": self.model,
            "messages": [
                { "role": "system", "content": SYSTEM_PROMPT },
                { "role": "user", "content": prompt },
            ],
        });
        let mut request = self.client.post(self.url.clone()).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            RunnerError(format!(
                "the model endpoint could not be reached: {}",
                e.without_url()
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(200).collect();
            return Err(RunnerError(format!(
                "the model endpoint answered {status}: {excerpt}"
            )));
        }
        let completion: Completion = response.json().await.map_err(|e| {
            RunnerError(format!(
                "the model endpoint's answer is not a chat completion: {}",
                e.without_url()
            ))
        })?;
        let text = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| RunnerError("the model endpoint answered no message".into()))?;
        Ok((text, completion.usage))
    }
}

const SYSTEM_PROMPT: &str = "You are an autonomous agent working through a plan one step at a \
time. Answer the current step only, concisely. Follow any new instruction from the owner.";

/// The step asked of the model, or how the step ends without asking.
enum Play {
    Ask(String),
    Outcome(StepOutcome),
}

fn play(step: &PlanStep) -> Play {
    match step {
        PlanStep::Think { text, .. } => Play::Ask(text.clone()),
        PlanStep::Tool { name, params, .. } => Play::Ask(format!(
            "Use the tool {name} with parameters {params}. No tool runs here: say what the call \
             should do and what it should return."
        )),
        PlanStep::Approval {
            action_type,
            description,
            params,
            timeout_action,
        } => Play::Outcome(StepOutcome::AwaitApproval(ApprovalNeeded {
            action_type: action_type.clone(),
            description: description.clone(),
            params: params.clone(),
            timeout_action: timeout_action.clone(),
        })),
        PlanStep::Fail { reason } => Play::Outcome(StepOutcome::Fail(reason.clone())),
        PlanStep::Finish { result } => Play::Outcome(StepOutcome::Finish(result.clone())),
    }
}

fn prompt(ctx: &StepContext<'_>, ask: &str) -> String {
    let phases = ctx.plan.phases.len();
    let phase = usize::try_from(ctx.phase_index)
        .ok()
        .and_then(|p| ctx.plan.phases.get(p));
    let (name, steps) = phase.map_or(("", 0), |p| (p.name.as_str(), p.steps.len()));
    let mut text = format!(
        "Task: {}\n\nPhase {} of {phases}: {name}\nStep {} of {steps}: {ask}",
        ctx.task,
        ctx.phase_index + 1,
        ctx.step_index + 1,
    );
    if let Some(instruction) = ctx.instruction {
        text.push_str("\n\nNew instruction from the owner: ");
        text.push_str(instruction);
    }
    text
}

#[async_trait::async_trait]
impl AgentRunner for HttpRunner {
    fn name(&self) -> &'static str {
        "http"
    }

    fn needs_plan(&self) -> bool {
        false
    }

    async fn plan(&self, _task: &str, given: Option<&Plan>) -> Result<Plan, RunnerError> {
        Ok(given.cloned().unwrap_or_else(|| Plan {
            phases: vec![Phase {
                name: "answer".into(),
                steps: vec![PlanStep::Think {
                    text: "Carry out the task and give the result.".into(),
                    tokens: None,
                }],
            }],
        }))
    }

    async fn step(&self, ctx: StepContext<'_>) -> Result<StepOutput, RunnerError> {
        let step = ctx
            .plan
            .step(ctx.phase_index, ctx.step_index)
            .ok_or_else(|| RunnerError("the plan has no step at this position".into()))?;
        let ask = match play(step) {
            Play::Outcome(outcome) => {
                return Ok(StepOutput {
                    thoughts: Vec::new(),
                    tool_call: None,
                    tokens: None,
                    outcome,
                });
            }
            Play::Ask(ask) => ask,
        };
        let (reply, usage) = self.ask(prompt(&ctx, &ask)).await?;
        let last = ctx.plan.next(ctx.phase_index, ctx.step_index).0.is_none();
        let outcome = if last {
            StepOutcome::Finish(Json::String(reply.clone()))
        } else {
            StepOutcome::Continue
        };
        Ok(StepOutput {
            thoughts: vec![reply],
            tool_call: None,
            tokens: usage.map(|u| StepTokens {
                provider: self.provider.clone(),
                model: self.model.clone(),
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
            }),
            outcome,
        })
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}
