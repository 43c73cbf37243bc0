//! The Grafana dashboard in `deploy/grafana/dashboards/` and the metrics it reads.
//!
//! The dashboard may use only what the gateway's `/metrics` serves: the LiteLLM-named metrics
//! in [`SWITCHYARD_METRICS`] and Envoy's own `envoy_*` stats. The PromQL of its panels is read
//! with a small scanner, enough for the selectors, label matchers and groupings a dashboard
//! uses: [`parse_expr`] gives the selectors of one expression, [`dashboard_metric_names`] the
//! base names of every metric the dashboard reads, for comparing with a real scrape.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::artefacts::repo_root;

/// The dashboard, relative to the repository root.
pub const DASHBOARD: &str = "deploy/grafana/dashboards/switchyard.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Exposed as `<name>_bucket`, `<name>_sum` and `<name>_count`.
    Histogram,
}

const PROXY_REQUESTS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "status_code",
];
const PROXY_FAILURES: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "exception_status",
    "exception_class",
];
const SPEND: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
];
const TOKENS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "model",
    "team",
    "team_alias",
    "user",
    "requested_model",
];
const DEPLOYMENT: &[&str] = &[
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const DEPLOYMENT_FAILURES: &[&str] = &[
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "exception_status",
    "exception_class",
];
const FALLBACKS: &[&str] = &[
    "requested_model",
    "fallback_model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "exception_status",
    "exception_class",
];
const CACHE: &[&str] = &[
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const TOTAL_LATENCY: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
    "model",
];
const API_LATENCY: &[&str] = &[
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "requested_model",
    "end_user",
    "user",
];
const FIRST_TOKEN: &[&str] = &[
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const PER_DEPLOYMENT_KEY: &[&str] = &[
    "model_group",
    "api_provider",
    "api_base",
    "litellm_model_name",
    "hashed_api_key",
    "api_key_alias",
];
const DEPLOYMENT_STATE: &[&str] = &["litellm_model_name", "model_id", "api_base", "api_provider"];
const KEY_BUDGET: &[&str] = &["hashed_api_key", "api_key_alias"];
const TEAM_BUDGET: &[&str] = &["team", "team_alias"];

/// The LiteLLM-named metrics Switchyard's `/metrics` serves, as exposed (counters with their
/// `_total`; histograms by their base name), and their labels.
pub const SWITCHYARD_METRICS: &[(&str, Kind, &[&str])] = &[
    (
        "litellm_proxy_total_requests_metric_total",
        Kind::Counter,
        PROXY_REQUESTS,
    ),
    (
        "litellm_proxy_failed_requests_metric_total",
        Kind::Counter,
        PROXY_FAILURES,
    ),
    ("litellm_spend_metric_total", Kind::Counter, SPEND),
    ("litellm_total_tokens_metric_total", Kind::Counter, TOKENS),
    ("litellm_input_tokens_metric_total", Kind::Counter, TOKENS),
    ("litellm_output_tokens_metric_total", Kind::Counter, TOKENS),
    (
        "litellm_deployment_success_responses_total",
        Kind::Counter,
        DEPLOYMENT,
    ),
    (
        "litellm_deployment_total_requests_total",
        Kind::Counter,
        DEPLOYMENT,
    ),
    (
        "litellm_deployment_failure_responses_total",
        Kind::Counter,
        DEPLOYMENT_FAILURES,
    ),
    (
        "litellm_deployment_successful_fallbacks_total",
        Kind::Counter,
        FALLBACKS,
    ),
    (
        "litellm_deployment_failed_fallbacks_total",
        Kind::Counter,
        FALLBACKS,
    ),
    ("litellm_cache_hits_metric_total", Kind::Counter, CACHE),
    ("litellm_cache_misses_metric_total", Kind::Counter, CACHE),
    (
        "litellm_request_total_latency_metric",
        Kind::Histogram,
        TOTAL_LATENCY,
    ),
    (
        "litellm_llm_api_latency_metric",
        Kind::Histogram,
        API_LATENCY,
    ),
    (
        "litellm_llm_api_time_to_first_token_metric",
        Kind::Histogram,
        FIRST_TOKEN,
    ),
    (
        "litellm_overhead_latency_metric",
        Kind::Histogram,
        PER_DEPLOYMENT_KEY,
    ),
    ("litellm_deployment_state", Kind::Gauge, DEPLOYMENT_STATE),
    (
        "litellm_remaining_requests_metric",
        Kind::Gauge,
        PER_DEPLOYMENT_KEY,
    ),
    (
        "litellm_remaining_tokens_metric",
        Kind::Gauge,
        PER_DEPLOYMENT_KEY,
    ),
    (
        "litellm_remaining_api_key_budget_metric",
        Kind::Gauge,
        KEY_BUDGET,
    ),
    ("litellm_api_key_max_budget_metric", Kind::Gauge, KEY_BUDGET),
    (
        "litellm_remaining_team_budget_metric",
        Kind::Gauge,
        TEAM_BUDGET,
    ),
    ("litellm_team_max_budget_metric", Kind::Gauge, TEAM_BUDGET),
];

/// The kind and labels of one of [`SWITCHYARD_METRICS`], by its base name.
pub fn switchyard_metric(base: &str) -> Option<(Kind, &'static [&'static str])> {
    SWITCHYARD_METRICS
        .iter()
        .find(|(name, _, _)| *name == base)
        .map(|(_, kind, labels)| (*kind, *labels))
}

/// A series name without a histogram's `_bucket`, `_sum` or `_count` suffix:
/// `litellm_llm_api_latency_metric_bucket` is `litellm_llm_api_latency_metric`. A counter's
/// `_total` stays: it is part of the name the gateway exposes.
pub fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// One instant or range vector selector of an expression: `name{label="v", ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// As written (`..._bucket` included); empty for a selector with only matchers (`{a="b"}`).
    pub name: String,
    /// The labels its matchers name.
    pub labels: BTreeSet<String>,
}

/// What an expression reads: its selectors, and the labels of its `by (...)`, `without (...)`,
/// `on (...)`, `ignoring (...)` and `group_left/right (...)` clauses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expr {
    pub selectors: Vec<Selector>,
    pub grouping: BTreeSet<String>,
}

const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

struct Scanner<'a> {
    chars: Vec<char>,
    at: usize,
    expr: &'a str,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// The next character after whitespace, not consumed.
    fn next_visible(&mut self) -> Option<char> {
        self.skip_space();
        self.peek()
    }

    fn ident(&mut self) -> String {
        let start = self.at;
        while self.peek().is_some_and(is_ident) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// The identifier that follows (after whitespace), not consumed.
    fn next_word(&mut self) -> String {
        let at = self.at;
        self.skip_space();
        let word = self.ident();
        self.at = at;
        word
    }

    fn string(&mut self) {
        let quote = self.chars[self.at];
        self.at += 1;
        while let Some(c) = self.peek() {
            self.at += 1;
            if c == '\\' && quote != '`' {
                self.at += 1;
            } else if c == quote {
                return;
            }
        }
        panic!("unterminated string in {:?}", self.expr);
    }

    /// Skips to the `close` matching the opening bracket at the cursor.
    fn skip_to(&mut self, close: char) {
        self.at += 1;
        while let Some(c) = self.peek() {
            match c {
                '"' | '\'' | '`' => self.string(),
                c if c == close => {
                    self.at += 1;
                    return;
                }
                _ => self.at += 1,
            }
        }
        panic!("no {close:?} closes a bracket in {:?}", self.expr);
    }

    /// `{label op "value", ...}` at the cursor: the label names.
    fn matchers(&mut self) -> BTreeSet<String> {
        let mut labels = BTreeSet::new();
        self.at += 1;
        loop {
            match self.next_visible() {
                Some('}') => {
                    self.at += 1;
                    return labels;
                }
                Some(',') => self.at += 1,
                Some('"' | '\'' | '`') => self.string(),
                Some(c) if is_ident_start(c) => {
                    labels.insert(self.ident());
                }
                Some('=' | '!' | '~') => self.at += 1,
                Some('$') => self.variable(),
                other => panic!(
                    "unexpected {other:?} in the label matchers of {:?}",
                    self.expr
                ),
            }
        }
    }

    /// `(label, ...)` at the cursor: the label names.
    fn label_list(&mut self) -> BTreeSet<String> {
        let mut labels = BTreeSet::new();
        self.at += 1;
        loop {
            match self.next_visible() {
                Some(')') => {
                    self.at += 1;
                    return labels;
                }
                Some(',') => self.at += 1,
                Some(c) if is_ident_start(c) => {
                    labels.insert(self.ident());
                }
                other => panic!("unexpected {other:?} in a label list of {:?}", self.expr),
            }
        }
    }

    /// A Grafana variable: `$name` or `${name}` (or `${name:format}`).
    fn variable(&mut self) {
        self.at += 1;
        if self.peek() == Some('{') {
            self.skip_to('}');
        } else {
            self.ident();
        }
    }
}

/// The selectors and grouping labels of one PromQL expression (Grafana's `$variables` allowed).
/// A name followed by `(` is a function, one followed by `by`/`without` an aggregation; string
/// literals, durations, `[ranges]` and numbers are skipped.
pub fn parse_expr(expr: &str) -> Expr {
    let mut scanner = Scanner {
        chars: expr.chars().collect(),
        at: 0,
        expr,
    };
    let mut out = Expr::default();
    while let Some(c) = scanner.next_visible() {
        match c {
            '"' | '\'' | '`' => scanner.string(),
            '#' => {
                while scanner.peek().is_some_and(|c| c != '\n') {
                    scanner.at += 1;
                }
            }
            '[' => scanner.skip_to(']'),
            '$' => scanner.variable(),
            '{' => out.selectors.push(Selector {
                name: String::new(),
                labels: scanner.matchers(),
            }),
            c if c.is_ascii_digit() || c == '.' => {
                while scanner.peek().is_some_and(|c| is_ident(c) || c == '.') {
                    scanner.at += 1;
                }
            }
            c if is_ident_start(c) => {
                let word = scanner.ident();
                let lower = word.to_ascii_lowercase();
                if GROUPING.contains(&lower.as_str()) {
                    if scanner.next_visible() == Some('(') {
                        out.grouping.extend(scanner.label_list());
                    }
                } else if KEYWORDS.contains(&lower.as_str())
                    || scanner.next_visible() == Some('(')
                    || matches!(scanner.next_word().as_str(), "by" | "without")
                {
                    // An operator, a function or an aggregation.
                } else {
                    let labels = if scanner.next_visible() == Some('{') {
                        scanner.matchers()
                    } else {
                        BTreeSet::new()
                    };
                    out.selectors.push(Selector { name: word, labels });
                }
            }
            _ => scanner.at += 1,
        }
    }
    out
}

/// The dashboard, parsed.
pub fn dashboard() -> Value {
    let path = repo_root().join(DASHBOARD);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every panel, rows included, and the panels inside (collapsed) rows.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The PromQL of every panel's queries.
pub fn exprs(dashboard: &Value) -> Vec<String> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect()
}

/// The base names ([`base_name`]) of the metrics the dashboard's queries read.
pub fn dashboard_metric_names() -> BTreeSet<String> {
    exprs(&dashboard())
        .iter()
        .flat_map(|e| parse_expr(e).selectors)
        .map(|s| base_name(&s.name).to_string())
        .collect()
}
