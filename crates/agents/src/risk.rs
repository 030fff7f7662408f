//! Risk scoring of actions that ask for approval. Text is read as whole
//! words (lowercase, split on anything that is not a letter or digit and at
//! camelCase humps, so `sendEmail` is `send email`), never as substrings:
//! `swipe` is not `wipe`, and `DROP\n  TABLE` is still `drop table`.
//! Parameters are read as their keys and string values, walked through
//! nested objects and lists. The rules, applied in order:
//!
//! 1. **Base level**, from the words of the action type and description:
//!    deleting (`delete`, `remove`, `destroy`, `erase`, `purge`), purchasing
//!    or paying (`purchase`, `buy`, `pay`, `charge`, `checkout`), sending
//!    (`send`, `email`, `mail`, `publish`, `post`, `reply`, `forward`,
//!    `tweet`, `sms`) and shell commands (`shell`, `bash`, `exec`, `execute`,
//!    `command`, `script`, `terminal`, `sudo`) are `high`, each with its usual
//!    inflections (`deleted`, `sending`, `paid`, ...); writing (`write`,
//!    `update`, `create`, `modify`, `upload`, `edit`, `insert`, `rename`,
//!    `move`) is `medium`; anything else is `low`.
//! 2. **Destructive patterns** make it `critical`: `drop table`, `drop
//!    database`, `drop schema`, `drop collection`, `truncate`, `rm -rf` (also
//!    `-fr` and `-r -f`), `wipe`, `format disk`, `format drive` or `mkfs` in
//!    the type, description or any parameter; and, in a parameter, an SQL
//!    `DELETE FROM` or `UPDATE ... SET` statement without a `WHERE`.
//! 3. **Raising factors** each move the level up one step (at most
//!    `critical`), so a `low` action with one of them needs a human:
//!    - a *bulk* target: a list of more than 10 items anywhere in the
//!      parameters, a `count` or `quantity` parameter over 10, or `bulk`,
//!      `mass`, `all`, `every`, `everyone`, `everything` or `entire` in the
//!      type or description;
//!    - a *financial* target: a parameter key naming money (`amount`,
//!      `price`, `budget`, `cost`, `currency`, `fee`, `salary`, in any case
//!      style: `amountCents`, `unit_price`) or money words anywhere
//!      (`invoice`, `refund`, `payment`, `transfer`, `payout`, `payroll`);
//!    - a *production* target: `prod`, `production`, `prd` or `live` as a
//!      word anywhere, e.g. `{"environment": "production"}`.
//!
//! Only `low` is approved automatically. The rules err on the side of a
//! human: a false alarm costs a click, a missed one an unreviewed action.
//! Every matched rule is returned as a factor, so the approver sees why.

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

/// Rule 1, `high`: each word list with the factor it reports.
const HIGH: [(&[&str], &str); 4] = [
    (
        &[
            "delete",
            "deletes",
            "deleted",
            "deleting",
            "deletion",
            "remove",
            "removes",
            "removed",
            "removing",
            "removal",
            "destroy",
            "destroys",
            "destroyed",
            "destroying",
            "erase",
            "erases",
            "erased",
            "erasing",
            "purge",
            "purges",
            "purged",
            "purging",
        ],
        "deletes data",
    ),
    (
        &[
            "purchase",
            "purchases",
            "purchased",
            "purchasing",
            "buy",
            "buys",
            "buying",
            "bought",
            "pay",
            "pays",
            "paid",
            "paying",
            "charge",
            "charges",
            "charged",
            "charging",
            "checkout",
        ],
        "spends money",
    ),
    (
        &[
            "send",
            "sends",
            "sent",
            "sending",
            "email",
            "emails",
            "emailed",
            "emailing",
            "mail",
            "mails",
            "mailed",
            "mailing",
            "publish",
            "publishes",
            "published",
            "publishing",
            "post",
            "posts",
            "posted",
            "posting",
            "reply",
            "replies",
            "replied",
            "forward",
            "forwards",
            "forwarded",
            "tweet",
            "tweets",
            "sms",
        ],
        "sends to the outside",
    ),
    (
        &[
            "shell",
            "bash",
            "exec",
            "execute",
            "executes",
            "executed",
            "executing",
            "command",
            "commands",
            "script",
            "scripts",
            "terminal",
            "sudo",
        ],
        "runs a shell command",
    ),
];

/// Rule 1, `medium`.
const MEDIUM: [&str; 27] = [
    "write", "writes", "wrote", "writing", "update", "updates", "updated", "updating", "create",
    "creates", "created", "creating", "modify", "modifies", "modified", "upload", "uploads",
    "uploaded", "edit", "edits", "edited", "insert", "inserts", "inserted", "rename", "move",
    "moves",
];

/// Rule 2: word sequences that destroy data wherever they appear.
const CRITICAL: [&[&str]; 12] = [
    &["drop", "table"],
    &["drop", "database"],
    &["drop", "schema"],
    &["drop", "collection"],
    &["truncate"],
    &["rm", "rf"],
    &["rm", "fr"],
    &["rm", "r", "f"],
    &["wipe"],
    &["format", "disk"],
    &["format", "drive"],
    &["mkfs"],
];

const BULK_WORDS: [&str; 8] = [
    "bulk",
    "mass",
    "all",
    "every",
    "everyone",
    "everything",
    "entire",
    "everybody",
];
const BULK_COUNT_KEYS: [&str; 2] = ["count", "quantity"];
const BULK_THRESHOLD: usize = 10;

const MONEY_KEYS: [&str; 8] = [
    "amount", "price", "budget", "cost", "currency", "fee", "fees", "salary",
];
const MONEY_WORDS: [&str; 14] = [
    "invoice",
    "invoices",
    "refund",
    "refunds",
    "refunded",
    "payment",
    "payments",
    "transfer",
    "transfers",
    "transferred",
    "payout",
    "payouts",
    "payroll",
    "wire",
];

const PRODUCTION_WORDS: [&str; 4] = ["prod", "production", "prd", "live"];

fn raise(level: RiskLevel) -> RiskLevel {
    match level {
        RiskLevel::Low => RiskLevel::Medium,
        RiskLevel::Medium => RiskLevel::High,
        RiskLevel::High | RiskLevel::Critical => RiskLevel::Critical,
    }
}

/// Words of `text`, lowercase, split on anything that is not a letter or
/// digit and where a lowercase letter is followed by an uppercase one.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn has_any(words: &[String], list: &[&str]) -> bool {
    words.iter().any(|w| list.contains(&w.as_str()))
}

fn has_sequence(words: &[String], seq: &[&str]) -> bool {
    words
        .windows(seq.len())
        .any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
}

/// The parameters' keys and string values, in document order.
struct Params<'a> {
    keys: Vec<&'a str>,
    strings: Vec<&'a str>,
    longest_list: usize,
    bulk_count: bool,
}

impl<'a> Params<'a> {
    fn read(json: &'a Json) -> Self {
        let mut p = Self {
            keys: Vec::new(),
            strings: Vec::new(),
            longest_list: 0,
            bulk_count: false,
        };
        p.walk(json);
        p
    }

    fn walk(&mut self, json: &'a Json) {
        match json {
            Json::String(s) => self.strings.push(s),
            Json::Array(items) => {
                self.longest_list = self.longest_list.max(items.len());
                items.iter().for_each(|v| self.walk(v));
            }
            Json::Object(map) => {
                for (key, value) in map {
                    self.keys.push(key);
                    if has_any(&words(key), &BULK_COUNT_KEYS) && over_threshold(value) {
                        self.bulk_count = true;
                    }
                    self.walk(value);
                }
            }
            Json::Null | Json::Bool(_) | Json::Number(_) => {}
        }
    }
}

fn over_threshold(value: &Json) -> bool {
    let n = match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.is_some_and(|n| n > BULK_THRESHOLD as f64)
}

/// An SQL `DELETE FROM` or `UPDATE ... SET` statement in `text` without a `WHERE`.
fn unbounded_sql(text: &str) -> Option<&'static str> {
    text.split(';').find_map(|statement| {
        let w = words(statement);
        let has = |word: &str| w.iter().any(|x| x == word);
        match w.first().map(String::as_str) {
            Some("delete") if has("from") && !has("where") => Some("unbounded SQL delete"),
            Some("update") if has("set") && !has("where") => Some("unbounded SQL update"),
            _ => None,
        }
    })
}

/// Scores an action by the rules above.
pub fn score(action_type: &str, description: &str, params: &Json) -> Risk {
    let head = words(&format!("{action_type} {description}"));
    let p = Params::read(params);
    let key_words: Vec<String> = p.keys.iter().flat_map(|k| words(k)).collect();
    let texts: Vec<Vec<String>> = std::iter::once(head.clone())
        .chain(p.strings.iter().map(|s| words(s)))
        .collect();
    let all_words: Vec<&String> = texts.iter().flatten().chain(&key_words).collect();
    let anywhere = |list: &[&str]| all_words.iter().any(|w| list.contains(&w.as_str()));
    let mut factors: Vec<String> = Vec::new();

    // Rule 1.
    let mut level = RiskLevel::Low;
    for (list, why) in HIGH {
        if has_any(&head, list) {
            level = RiskLevel::High;
            factors.push(why.to_owned());
        }
    }
    if level == RiskLevel::Low && has_any(&head, &MEDIUM) {
        level = RiskLevel::Medium;
        factors.push("changes data".to_owned());
    }

    // Rule 2.
    let pattern = CRITICAL
        .iter()
        .find(|seq| texts.iter().any(|t| has_sequence(t, seq)));
    if let Some(seq) = pattern {
        level = RiskLevel::Critical;
        factors.push(format!("destructive pattern: {}", seq.join(" ")));
    }
    if let Some(why) = p.strings.iter().find_map(|s| unbounded_sql(s)) {
        level = RiskLevel::Critical;
        factors.push(format!("destructive pattern: {why}"));
    }

    // Rule 3.
    if p.longest_list > BULK_THRESHOLD || p.bulk_count || has_any(&head, &BULK_WORDS) {
        level = raise(level);
        factors.push("bulk target".to_owned());
    }
    if has_any(&key_words, &MONEY_KEYS) || anywhere(&MONEY_WORDS) {
        level = raise(level);
        factors.push("financial target".to_owned());
    }
    if anywhere(&PRODUCTION_WORDS) {
        level = raise(level);
        factors.push("production target".to_owned());
    }
    Risk { level, factors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn level(kind: &str, text: &str, params: Json) -> RiskLevel {
        score(kind, text, &params).level
    }

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
        for (kind, text, why) in [
            ("delete_records", "Delete three leads", "deletes data"),
            ("purchase", "Buy a domain", "spends money"),
            (
                "send_email",
                "Send the weekly report",
                "sends to the outside",
            ),
            ("shell", "Run ls in the workspace", "runs a shell command"),
        ] {
            let r = score(kind, text, &json!({}));
            assert_eq!(r.level, RiskLevel::High, "{kind}");
            assert_eq!(r.factors, vec![why.to_owned()], "{kind}");
        }
    }

    #[test]
    fn inflections_and_camel_case_action_types_are_recognised() {
        assert_eq!(level("sendEmail", "", json!({})), RiskLevel::High);
        assert_eq!(level("DeleteRecords", "", json!({})), RiskLevel::High);
        assert_eq!(level("task", "Paid the vendor", json!({})), RiskLevel::High);
        assert_eq!(
            level("step", "Executes the cleanup", json!({})),
            RiskLevel::High
        );
    }

    #[test]
    fn writing_is_medium() {
        let r = score("update_record", "Update a lead's tags", &json!({}));
        assert_eq!(r.level, RiskLevel::Medium);
        assert_eq!(r.factors, vec!["changes data".to_owned()]);
    }

    #[test]
    fn words_match_whole_never_as_substrings() {
        // `swipe` is not `wipe`, `postgres` is not `post`, `display` is not `pay`.
        assert_eq!(
            level("ui", "Swipe to the display settings", json!({})),
            RiskLevel::Low
        );
        assert_eq!(level("read_postgres", "", json!({})), RiskLevel::Low);
        assert_eq!(
            level("read", "Check the olive stock", json!({})),
            RiskLevel::Low
        );
    }

    #[test]
    fn drop_table_in_params_is_critical() {
        let r = score("sql", "Clean up", &json!({"sql": "DROP TABLE leads"}));
        assert_eq!(r.level, RiskLevel::Critical);
        assert!(
            r.factors
                .contains(&"destructive pattern: drop table".to_owned())
        );
    }

    #[test]
    fn destructive_patterns_survive_odd_spacing_and_nesting() {
        let nested = json!({"steps": [{"sql": "drop\n\t TABLE leads"}]});
        assert_eq!(level("sql", "Clean up", nested), RiskLevel::Critical);
        assert_eq!(
            level("shell", "Tidy", json!({"cmd": "rm -Rf /srv/data"})),
            RiskLevel::Critical
        );
        assert_eq!(
            level("shell", "Tidy", json!({"cmd": "rm -r -f /srv/data"})),
            RiskLevel::Critical
        );
        assert_eq!(
            level("task", "Wipe the staging bucket", json!({})),
            RiskLevel::Critical
        );
    }

    #[test]
    fn sql_delete_or_update_without_where_is_critical() {
        for sql in [
            "delete from leads",
            "UPDATE leads SET status = 'lost'",
            "select 1; DELETE FROM leads",
        ] {
            assert_eq!(
                level("sql", "Clean up", json!({ "sql": sql })),
                RiskLevel::Critical,
                "{sql}"
            );
        }
        for sql in [
            "delete from leads where id = 1",
            "DELETE FROM leads\nWHERE id = 1",
            "update leads set status = 'won' where id = 2",
        ] {
            assert_ne!(
                level("sql", "Clean up", json!({ "sql": sql })),
                RiskLevel::Critical,
                "{sql}"
            );
        }
    }

    #[test]
    fn bulk_targets_raise_medium_to_high() {
        let targets: Vec<u32> = (0..11).collect();
        let r = score("update_records", "Update tags", &json!({"ids": targets}));
        assert_eq!(r.level, RiskLevel::High);
        assert!(r.factors.contains(&"bulk target".to_owned()));
        assert_eq!(
            level(
                "update_records",
                "Update tags",
                json!({"recipientCount": 50})
            ),
            RiskLevel::High
        );
        assert_eq!(
            level("update_records", "Update every lead", json!({})),
            RiskLevel::High
        );
        let ten: Vec<u32> = (0..10).collect();
        assert_eq!(
            level(
                "update_records",
                "Update tags",
                json!({"ids": ten, "count": 10})
            ),
            RiskLevel::Medium,
            "ten targets are not bulk"
        );
    }

    #[test]
    fn financial_targets_raise_the_level() {
        assert_eq!(
            level("update_budget", "Set the budget", json!({"amount": 500})),
            RiskLevel::High
        );
        assert_eq!(
            level("adjust", "Set the price", json!({"unitPriceCents": 500})),
            RiskLevel::Medium,
            "a money key raises low to medium"
        );
        assert_eq!(
            level("note", "Attach the invoice", json!({})),
            RiskLevel::Medium
        );
    }

    #[test]
    fn production_targets_raise_the_level() {
        assert_eq!(
            level("deploy", "Deploy to production", json!({})),
            RiskLevel::Medium
        );
        assert_eq!(
            level(
                "update_config",
                "Set a flag",
                json!({"environment": "prod"})
            ),
            RiskLevel::High
        );
        assert_eq!(
            level(
                "update_config",
                "Set a flag",
                json!({"environment": "staging"})
            ),
            RiskLevel::Medium
        );
    }

    #[test]
    fn raising_factors_stack_up_to_critical() {
        let r = score("send_email", "Send to all leads in production", &json!({}));
        assert_eq!(r.level, RiskLevel::Critical);
        assert_eq!(
            r.factors,
            vec![
                "sends to the outside".to_owned(),
                "bulk target".to_owned(),
                "production target".to_owned()
            ]
        );
        assert_eq!(
            level("read", "Read all invoices in production", json!({})),
            RiskLevel::Critical,
            "bulk, financial and production each raise low by one step"
        );
    }
}
