//! The macro's options: `#[activity(name = "..", heartbeat_timeout = "30s", retry(..))]` and
//! `#[workflow(name = "..", task_queue = "..", execution_timeout = "1h")]`.
//!
//! Parsed with `parse_nested_meta`. A bad value, an unknown key or a duplicate key is recorded in the
//! [`Ctxt`] and parsing goes on, so one compile shows every mistake.

use crate::ast::Kind;
use crate::ctxt::Ctxt;
use crate::duration::parse_millis;
use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

pub const NAME: &str = "name";
pub const TASK_QUEUE: &str = "task_queue";
pub const START_TO_CLOSE_TIMEOUT: &str = "start_to_close_timeout";
pub const SCHEDULE_TO_CLOSE_TIMEOUT: &str = "schedule_to_close_timeout";
pub const SCHEDULE_TO_START_TIMEOUT: &str = "schedule_to_start_timeout";
pub const HEARTBEAT_TIMEOUT: &str = "heartbeat_timeout";
pub const RETRY: &str = "retry";
pub const EXECUTION_TIMEOUT: &str = "execution_timeout";
pub const SIGNALS: &str = "signals";
pub const QUERIES: &str = "queries";
pub const UPDATES: &str = "updates";

pub const INITIAL_INTERVAL: &str = "initial_interval";
pub const BACKOFF_COEFFICIENT: &str = "backoff_coefficient";
pub const MAXIMUM_INTERVAL: &str = "maximum_interval";
pub const MAXIMUM_ATTEMPTS: &str = "maximum_attempts";
pub const NON_RETRYABLE: &str = "non_retryable";

/// The options `#[activity(..)]` takes, in the order the error message lists them.
pub const ACTIVITY_OPTIONS: &[&str] = &[
    NAME,
    START_TO_CLOSE_TIMEOUT,
    SCHEDULE_TO_CLOSE_TIMEOUT,
    SCHEDULE_TO_START_TIMEOUT,
    HEARTBEAT_TIMEOUT,
    RETRY,
    TASK_QUEUE,
];

/// The options `#[workflow(..)]` takes.
pub const WORKFLOW_OPTIONS: &[&str] = &[
    NAME,
    TASK_QUEUE,
    EXECUTION_TIMEOUT,
    SIGNALS,
    QUERIES,
    UPDATES,
];

/// The keys inside `retry(..)`.
pub const RETRY_OPTIONS: &[&str] = &[
    INITIAL_INTERVAL,
    BACKOFF_COEFFICIENT,
    MAXIMUM_INTERVAL,
    MAXIMUM_ATTEMPTS,
    NON_RETRYABLE,
];

/// The default `retry(initial_interval)`: 1 s, as the runtime's `RetryPolicy::default()`.
const DEFAULT_INITIAL_INTERVAL_MS: u64 = 1_000;

/// One option: its value and the key the user wrote (for spans of later errors).
pub struct Attr<T> {
    name: &'static str,
    pub key: Option<Ident>,
    pub value: Option<T>,
}

impl<T> Attr<T> {
    fn none(name: &'static str) -> Self {
        Attr {
            name,
            key: None,
            value: None,
        }
    }

    /// Records the value; a second occurrence is an error at the second key.
    fn set(&mut self, cx: &Ctxt, key: &Ident, value: T) {
        if self.check_first(cx, key) {
            self.value = Some(value);
        }
    }

    /// Marks the key as seen without a usable value (its error is already reported), so a later repeat
    /// is still reported as a duplicate and no follow-on check runs on a made-up value.
    fn seen(&mut self, cx: &Ctxt, key: &Ident) {
        self.check_first(cx, key);
    }

    fn check_first(&mut self, cx: &Ctxt, key: &Ident) -> bool {
        if self.key.is_some() {
            cx.error_spanned_by(
                key,
                format!(
                    "duplicate option `{}`: it is already set earlier in this attribute; keep one of them",
                    self.name
                ),
            );
            false
        } else {
            self.key = Some(key.clone());
            true
        }
    }
}

/// A duration option: whole milliseconds and the literal, for spans.
pub struct Dur {
    pub millis: u64,
    pub lit: LitStr,
}

/// `retry(..)`.
pub struct Retry {
    pub initial_interval: Attr<Dur>,
    pub backoff_coefficient: Attr<(f64, Lit)>,
    pub maximum_interval: Attr<Dur>,
    pub maximum_attempts: Attr<u32>,
    pub non_retryable: Attr<Vec<LitStr>>,
}

/// The parsed options of one `#[activity]` or `#[workflow]`.
pub struct Options {
    pub name: Attr<LitStr>,
    pub task_queue: Attr<LitStr>,
    pub start_to_close_timeout: Attr<Dur>,
    pub schedule_to_close_timeout: Attr<Dur>,
    pub schedule_to_start_timeout: Attr<Dur>,
    pub heartbeat_timeout: Attr<Dur>,
    pub execution_timeout: Attr<Dur>,
    pub retry: Attr<Retry>,
    /// `signals(..)`, `queries(..)`, `updates(..)` of a workflow.
    pub messages: crate::message::Declared,
}

impl Options {
    /// Parses the attribute's arguments. Never fails: problems go into `cx`.
    pub fn from_args(cx: &Ctxt, kind: Kind, args: TokenStream) -> Options {
        let mut options = Options {
            name: Attr::none(NAME),
            task_queue: Attr::none(TASK_QUEUE),
            start_to_close_timeout: Attr::none(START_TO_CLOSE_TIMEOUT),
            schedule_to_close_timeout: Attr::none(SCHEDULE_TO_CLOSE_TIMEOUT),
            schedule_to_start_timeout: Attr::none(SCHEDULE_TO_START_TIMEOUT),
            heartbeat_timeout: Attr::none(HEARTBEAT_TIMEOUT),
            execution_timeout: Attr::none(EXECUTION_TIMEOUT),
            retry: Attr::none(RETRY),
            messages: Default::default(),
        };
        let parser = syn::meta::parser(|meta| options.parse_one(cx, kind, meta));
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        options.validate(cx);
        options
    }

    fn parse_one(&mut self, cx: &Ctxt, kind: Kind, meta: ParseNestedMeta) -> syn::Result<()> {
        let valid = match kind {
            Kind::Activity => ACTIVITY_OPTIONS,
            Kind::Workflow => WORKFLOW_OPTIONS,
        };
        let Some(key) = meta.path.get_ident().cloned() else {
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "unknown option for `{}`; valid options: {}",
                    kind.attr(),
                    list(valid)
                ),
            );
            return skip_value(&meta);
        };
        let known = valid.iter().any(|v| key == v);
        if !known {
            let other = match kind {
                Kind::Activity => (Kind::Workflow, WORKFLOW_OPTIONS),
                Kind::Workflow => (Kind::Activity, ACTIVITY_OPTIONS),
            };
            let hint = if other.1.iter().any(|v| key == v) {
                format!(
                    "`{key}` is an option of `{}`, not of `{}`",
                    other.0.attr(),
                    kind.attr()
                )
            } else {
                format!("unknown option `{key}` for `{}`", kind.attr())
            };
            let suggestion = closest(&key.to_string(), valid)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            cx.error_spanned_by(
                &key,
                format!("{hint}; valid options: {}{suggestion}", list(valid)),
            );
            return skip_value(&meta);
        }

        if key == SIGNALS || key == QUERIES || key == UPDATES {
            return self.messages.parse_list(cx, &meta, &key);
        }
        if key == RETRY {
            if !meta.input.peek(syn::token::Paren) {
                cx.error_spanned_by(
                    &key,
                    "`retry` takes its settings in parentheses: write `retry(maximum_attempts = 5, initial_interval = \"1s\")`",
                );
                return skip_value(&meta);
            }
            let mut retry = Retry {
                initial_interval: Attr::none(INITIAL_INTERVAL),
                backoff_coefficient: Attr::none(BACKOFF_COEFFICIENT),
                maximum_interval: Attr::none(MAXIMUM_INTERVAL),
                maximum_attempts: Attr::none(MAXIMUM_ATTEMPTS),
                non_retryable: Attr::none(NON_RETRYABLE),
            };
            let content;
            syn::parenthesized!(content in meta.input);
            let settings: TokenStream = content.parse()?;
            // `retry()` keeps the defaults.
            if !settings.is_empty() {
                let parser = syn::meta::parser(|inner| retry.parse_one(cx, inner));
                if let Err(err) = parser.parse2(settings) {
                    cx.syn_error(err);
                }
            }
            self.retry.set(cx, &key, retry);
            return Ok(());
        }

        let Some(expr) = value(cx, &meta, &key)? else {
            return Ok(());
        };
        if key == NAME || key == TASK_QUEUE {
            let attr = if key == NAME {
                &mut self.name
            } else {
                &mut self.task_queue
            };
            match string(cx, &key, &expr) {
                Some(lit) => attr.set(cx, &key, lit),
                None => attr.seen(cx, &key),
            }
            return Ok(());
        }
        let attr = if key == START_TO_CLOSE_TIMEOUT {
            &mut self.start_to_close_timeout
        } else if key == SCHEDULE_TO_CLOSE_TIMEOUT {
            &mut self.schedule_to_close_timeout
        } else if key == SCHEDULE_TO_START_TIMEOUT {
            &mut self.schedule_to_start_timeout
        } else if key == HEARTBEAT_TIMEOUT {
            &mut self.heartbeat_timeout
        } else {
            &mut self.execution_timeout
        };
        match duration(cx, &key, &expr) {
            Some(d) => attr.set(cx, &key, d),
            None => attr.seen(cx, &key),
        }
        Ok(())
    }

    /// Rules across options.
    fn validate(&self, cx: &Ctxt) {
        if let Some(retry) = &self.retry.value {
            let initial = retry
                .initial_interval
                .value
                .as_ref()
                .map_or(DEFAULT_INITIAL_INTERVAL_MS, |d| d.millis);
            if let Some(max) = &retry.maximum_interval.value {
                if max.millis < initial {
                    cx.error_spanned_by(
                        &max.lit,
                        format!(
                            "`maximum_interval` ({}) is shorter than `initial_interval` ({}); write a `maximum_interval` of at least \"{}\"",
                            max.lit.value(),
                            retry
                                .initial_interval
                                .value
                                .as_ref()
                                .map_or_else(|| "1s, the default".to_string(), |d| d.lit.value()),
                            render_millis(initial)
                        ),
                    );
                }
            }
        }
    }
}

impl Retry {
    fn parse_one(&mut self, cx: &Ctxt, meta: ParseNestedMeta) -> syn::Result<()> {
        let Some(key) = meta.path.get_ident().cloned() else {
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "unknown `retry` setting; valid settings: {}",
                    list(RETRY_OPTIONS)
                ),
            );
            return skip_value(&meta);
        };
        if !RETRY_OPTIONS.iter().any(|v| key == v) {
            let suggestion = closest(&key.to_string(), RETRY_OPTIONS)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            cx.error_spanned_by(
                &key,
                format!(
                    "unknown `retry` setting `{key}`; valid settings: {}{suggestion}",
                    list(RETRY_OPTIONS)
                ),
            );
            return skip_value(&meta);
        }
        let Some(expr) = value(cx, &meta, &key)? else {
            return Ok(());
        };
        if key == INITIAL_INTERVAL || key == MAXIMUM_INTERVAL {
            let attr = if key == INITIAL_INTERVAL {
                &mut self.initial_interval
            } else {
                &mut self.maximum_interval
            };
            match duration(cx, &key, &expr) {
                Some(d) => attr.set(cx, &key, d),
                None => attr.seen(cx, &key),
            }
        } else if key == BACKOFF_COEFFICIENT {
            match coefficient(cx, &expr) {
                Some(c) => self.backoff_coefficient.set(cx, &key, c),
                None => self.backoff_coefficient.seen(cx, &key),
            }
        } else if key == MAXIMUM_ATTEMPTS {
            match attempts(cx, &expr) {
                Some(n) => self.maximum_attempts.set(cx, &key, n),
                None => self.maximum_attempts.seen(cx, &key),
            }
        } else {
            match error_types(cx, &expr) {
                Some(v) => self.non_retryable.set(cx, &key, v),
                None => self.non_retryable.seen(cx, &key),
            }
        }
        Ok(())
    }
}

/// Reads `= <expr>`; a key without a value is an error that says what to write.
fn value(cx: &Ctxt, meta: &ParseNestedMeta, key: &Ident) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        let example = example(key);
        cx.error_spanned_by(
            key,
            format!("`{key}` needs a value: write `{key} = {example}`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    Ok(Some(meta.value()?.parse::<Expr>()?))
}

/// Consumes `= <expr>` or `(..)` after a key that is reported anyway, so parsing can go on.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn example(key: &Ident) -> &'static str {
    if key == NAME {
        "\"charge_card\""
    } else if key == TASK_QUEUE {
        "\"payments\""
    } else if key == BACKOFF_COEFFICIENT {
        "2.0"
    } else if key == MAXIMUM_ATTEMPTS {
        "5"
    } else if key == NON_RETRYABLE {
        "[\"InvalidInput\"]"
    } else {
        "\"30s\""
    }
}

fn lit_of(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit_of(&g.expr),
        _ => None,
    }
}

fn string(cx: &Ctxt, key: &Ident, expr: &Expr) -> Option<LitStr> {
    match lit_of(expr) {
        Some(Lit::Str(s)) if s.value().trim().is_empty() => {
            cx.error_spanned_by(
                s,
                format!(
                    "`{key}` cannot be empty; write e.g. `{key} = {}`",
                    example(key)
                ),
            );
            None
        }
        Some(Lit::Str(s)) => Some(s.clone()),
        _ => {
            cx.error_spanned_by(
                expr,
                format!(
                    "`{key}` takes a string literal: write `{key} = {}`",
                    example(key)
                ),
            );
            None
        }
    }
}

fn duration(cx: &Ctxt, key: &Ident, expr: &Expr) -> Option<Dur> {
    match lit_of(expr) {
        Some(Lit::Str(s)) if s.value().trim().contains(char::is_whitespace) => {
            cx.error_spanned_by(
                s,
                format!(
                    "invalid `{key}`: `{}` has spaces; write its parts together with the units `ms`, `s`, `m`, `h`, `d`, e.g. \"5m\" or \"1m30s\"",
                    s.value()
                ),
            );
            None
        }
        Some(Lit::Str(s)) => match parse_millis(&s.value()) {
            Ok(0) => {
                cx.error_spanned_by(
                    s,
                    format!(
                        "`{key}` cannot be zero: nothing could finish in no time; write a positive duration such as \"30s\", or leave `{key}` out for the default"
                    ),
                );
                None
            }
            Ok(millis) => Some(Dur {
                millis,
                lit: s.clone(),
            }),
            Err(msg) => {
                cx.error_spanned_by(s, format!("invalid `{key}`: {msg}"));
                None
            }
        },
        Some(Lit::Int(i)) => {
            cx.error_spanned_by(
                i,
                format!(
                    "`{key}` is a duration string with a unit: write `{key} = \"{}s\"` (or \"ms\", \"m\", \"h\", \"d\")",
                    i.base10_digits()
                ),
            );
            None
        }
        _ => {
            cx.error_spanned_by(
                expr,
                format!("`{key}` takes a duration string literal: write `{key} = \"30s\"`"),
            );
            None
        }
    }
}

fn coefficient(cx: &Ctxt, expr: &Expr) -> Option<(f64, Lit)> {
    let lit = lit_of(expr);
    let parsed = match lit {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match (parsed, lit) {
        (Some(c), Some(lit)) if c.is_finite() && c >= 1.0 => Some((c, lit.clone())),
        (Some(_), Some(lit)) => {
            cx.error_spanned_by(
                lit,
                "`backoff_coefficient` must be at least 1.0 (each retry waits that many times longer than the one before); write e.g. `backoff_coefficient = 2.0`",
            );
            None
        }
        _ => {
            cx.error_spanned_by(
                expr,
                "`backoff_coefficient` takes a number of at least 1.0: write e.g. `backoff_coefficient = 2.0`",
            );
            None
        }
    }
}

fn attempts(cx: &Ctxt, expr: &Expr) -> Option<u32> {
    match lit_of(expr) {
        Some(Lit::Int(i)) => match i.base10_parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                cx.error_spanned_by(
                    i,
                    "`maximum_attempts` must fit in a `u32`; write `maximum_attempts = 0` for unlimited attempts",
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(
                expr,
                "`maximum_attempts` takes a whole number (the first attempt included, 0 for unlimited): write e.g. `maximum_attempts = 5`",
            );
            None
        }
    }
}

fn error_types(cx: &Ctxt, expr: &Expr) -> Option<Vec<LitStr>> {
    const HINT: &str =
        "`non_retryable` takes a list of error type names: write e.g. `non_retryable = [\"InvalidInput\"]`";
    let elems: Vec<&Expr> = match expr {
        Expr::Array(a) => a.elems.iter().collect(),
        Expr::Lit(_) => vec![expr],
        _ => {
            cx.error_spanned_by(expr, HINT);
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for e in elems {
        match lit_of(e) {
            Some(Lit::Str(s)) if !s.value().trim().is_empty() => out.push(s.clone()),
            _ => {
                cx.error_spanned_by(e, HINT);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `` `a`, `b`, `c` ``
fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The valid name nearest to a misspelled key, if one is close.
fn closest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (edit_distance(key, v), *v))
        .filter(|(d, v)| *d <= 3.max(v.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Milliseconds in the literal grammar, for messages: 90000 -> "1m30s".
pub fn render_millis(mut ms: u64) -> String {
    if ms == 0 {
        return "0ms".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{closest, render_millis, ACTIVITY_OPTIONS};

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("heartbeat_timout", ACTIVITY_OPTIONS),
            Some("heartbeat_timeout")
        );
        assert_eq!(closest("colour", ACTIVITY_OPTIONS), None);
    }

    #[test]
    fn rendering() {
        assert_eq!(render_millis(90_000), "1m30s");
        assert_eq!(render_millis(250), "250ms");
    }
}
