//! Tables of cost tracking and budgets, one file each; amounts are `i64`
//! nano-dollars (1e-9 USD). Behaviour lives in `costs` and `budgets`.

pub mod api_token_usage;
pub mod billing_event;
pub mod browserbase_cost;
pub mod budget_alert;
pub mod cost_budget;
pub mod daily_cost_summary;
pub mod gemini_token_usage;
pub mod model_price;
pub mod storage_cost;
