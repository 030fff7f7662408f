//! Risk scoring of actions that ask for approval. The rules, applied in order:
//!
//! 1. Base level from the action type and description: deleting, purchasing
//!    or paying, sending (mail, messages, posts), and shell commands are
//!    `high`; writing or updating is `medium`; anything else is `low`.
//! 2. Destructive patterns anywhere in the action (type, description or
//!    parameters) make it `critical`: `drop table`, `drop database`,
//!    `truncate`, `rm -rf`, `delete from` without `where`, `format`, `wipe`.
//! 3. Each raising factor moves the level up one step (at most `critical`):
//!    a bulk target (a list of more than 10 targets, or `bulk`/`all` in the
//!    text, or a `count` parameter over 10), a financial target (an `amount`,
//!    `price` or `budget` parameter, or payment words), and a production
//!    target (`prod`/`production`/`live` in the text or an `environment`
//!    parameter).
//!
//! Only `low` is approved automatically. Every matched rule is returned as a
//! factor, so the approver sees why.

use crate::status::RiskLevel;
use serde_json::Value as Json;

/// The level and the rules that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// The level.
    pub level: RiskLevel,
    /// Human-readable rule names that matched.
    pub factors: Vec<String>,
}

const HIGH_WORDS: [(&str, &str); 14] = [
    ("delete", "deletes data"),
    ("remove", "deletes data"),
    ("destroy", "deletes data"),
    ("purchase", "spends money"),
    ("buy", "spends money"),
    ("pay", "spends money"),
    ("charge", "spends money"),
    ("send", "sends to the outside"),
    ("email", "sends to the outside"),
    ("publish", "sends to the outside"),
    ("post", "sends to the outside"),
    ("shell", "runs a shell command"),
    ("exec", "runs a shell command"),
    ("command", "runs a shell command"),
];

const MEDIUM_WORDS: [&str; 5] = ["write", "update", "create", "modify", "upload"];

const CRITICAL_PATTERNS: [&str; 7] = [
    "drop table",
    "drop database",
    "drop schema",
    "truncate",
    "rm -rf",
    "wipe",
    "format disk",
];

const FINANCIAL_KEYS: [&str; 4] = ["amount", "price", "budget", "cost"];
const BULK_THRESHOLD: usize = 10;

fn raise(level: RiskLevel) -> RiskLevel {
    match level {
        RiskLevel::Low => RiskLevel::Medium,
        RiskLevel::Medium => RiskLevel::High,
        RiskLevel::High | RiskLevel::Critical => RiskLevel::Critical,
    }
}

/// Words of `text`, lowercase, split on anything that is not a letter or digit.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn has_word(words: &[String], word: &str) -> bool {
    words
        .iter()
        .any(|w| w == word || (w.starts_with(word) && w.len() <= word.len() + 3))
}

fn unbounded_delete(text: &str) -> bool {
    text.lines()
        .any(|line| line.contains("delete from") && !line.contains(" where "))
}

fn max_list_len(json: &Json) -> usize {
    match json {
        Json::Array(items) => items
            .len()
            .max(items.iter().map(max_list_len).max().unwrap_or(0)),
        Json::Object(map) => map.values().map(max_list_len).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_key(json: &Json, keys: &[&str]) -> bool {
    match json {
        Json::Object(map) => map
            .iter()
            .any(|(k, v)| keys.contains(&k.to_lowercase().as_str()) || has_key(v, keys)),
        Json::Array(items) => items.iter().any(|v| has_key(v, keys)),
        _ => false,
    }
}

fn count_over(json: &Json, threshold: usize) -> bool {
    json.get("count")
        .and_then(Json::as_u64)
        .is_some_and(|n| n > threshold as u64)
}

/// Scores an action by the rules above.
pub fn score(action_type: &str, description: &str, params: &Json) -> Risk {
    let head = format!("{action_type} {description}");
    let head_words = words(&head);
    let all_text = format!("{head}\n{params}").to_lowercase();
    let all_words = words(&all_text);
    let mut factors = Vec::new();

    let mut level = RiskLevel::Low;
    for (word, why) in HIGH_WORDS {
        if has_word(&head_words, word) {
            level = RiskLevel::High;
            let factor = why.to_owned();
            if !factors.contains(&factor) {
                factors.push(factor);
            }
        }
    }
    if level == RiskLevel::Low && MEDIUM_WORDS.iter().any(|w| has_word(&head_words, w)) {
        level = RiskLevel::Medium;
        factors.push("changes data".to_owned());
    }

    if CRITICAL_PATTERNS.iter().any(|p| all_text.contains(p)) || unbounded_delete(&all_text) {
        level = RiskLevel::Critical;
        factors.push("destructive pattern".to_owned());
    }

    if max_list_len(params) > BULK_THRESHOLD
        || count_over(params, BULK_THRESHOLD)
        || has_word(&head_words, "bulk")
        || head_words.iter().any(|w| w == "all")
    {
        level = raise(level);
        factors.push("bulk target".to_owned());
    }
    if has_key(params, &FINANCIAL_KEYS)
        || ["invoice", "refund", "payment", "transfer"]
            .iter()
            .any(|w| has_word(&all_words, w))
    {
        level = raise(level);
        factors.push("financial target".to_owned());
    }
    if ["prod", "production", "live"]
        .iter()
        .any(|w| all_words.iter().any(|x| x == w))
    {
        level = raise(level);
        factors.push("production target".to_owned());
    }
    Risk { level, factors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reading_is_low_and_needs_no_human() {
        let r = score(
            "read_page",
            "Read the pricing page",
            &json!({"url": "https://x"}),
        );
        assert_eq!(r.level, RiskLevel::Low);
        assert!(r.factors.is_empty());
    }

    #[test]
    fn deleting_purchasing_sending_and_shell_are_high() {
        for (kind, text) in [
            ("delete_records", "Delete three leads"),
            ("purchase", "Buy a domain"),
            ("send_email", "Send the weekly report"),
            ("shell", "Run ls in the workspace"),
        ] {
            assert_eq!(
                score(kind, text, &json!({})).level,
                RiskLevel::High,
                "{kind}"
            );
        }
    }

    #[test]
    fn destructive_patterns_are_critical() {
        let r = score("sql", "Clean up", &json!({"sql": "DROP TABLE leads"}));
        assert_eq!(r.level, RiskLevel::Critical);
        let r = score("sql", "Clean up", &json!({"sql": "delete from leads"}));
        assert_eq!(r.level, RiskLevel::Critical);
        let r = score(
            "sql",
            "Clean up",
            &json!({"sql": "delete from leads where id = 1"}),
        );
        assert_ne!(r.level, RiskLevel::Critical);
    }

    #[test]
    fn bulk_financial_and_production_targets_raise_the_level() {
        let targets: Vec<u32> = (0..11).collect();
        assert_eq!(
            score("update_records", "Update tags", &json!({"ids": targets})).level,
            RiskLevel::High
        );
        assert_eq!(
            score("update_budget", "Set the budget", &json!({"amount": 500})).level,
            RiskLevel::High
        );
        assert_eq!(
            score("deploy", "Deploy to production", &json!({})).level,
            RiskLevel::Medium
        );
        assert_eq!(
            score("send_email", "Send to all leads in production", &json!({})).level,
            RiskLevel::Critical
        );
    }
}
