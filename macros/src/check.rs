//! Rules across the whole item: determinism of workflow bodies, the `#[allow_nondeterminism]` escape
//! hatch, and heartbeats of activities that declare a heartbeat timeout.
//!
//! The checks are syntactic: they match the path segments of calls as written. A call through a `use`
//! import that renames or hides the crate (`use tokio::time::sleep; sleep(d)`) cannot be resolved by a
//! macro and is not caught; the runtime's replay check reports such nondeterminism when it happens.

use crate::ast::{Function, Kind};
use crate::attr::Options;
use crate::ctxt::Ctxt;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, ExprCall, Macro, Pat, Stmt, Token};

/// The escape hatch, written on a statement a person has reviewed.
pub const ALLOW_NONDETERMINISM: &str = "allow_nondeterminism";

/// Every whole-item rule on a fn whose signature became a definition.
pub fn check(cx: &Ctxt, f: &Function, options: &Options) {
    check_body(cx, f.kind, &f.item.block);
    if f.kind == Kind::Activity {
        check_heartbeats(cx, f, options);
    }
}

/// The rules on the body alone: they also run when the signature is broken, so all errors show at once.
pub fn check_body(cx: &Ctxt, kind: Kind, block: &syn::Block) {
    check_escape_hatches(cx, kind, block);
    if kind == Kind::Workflow {
        Determinism { cx }.visit_block(block);
    }
}

// ---------------------------------------------------------------------------------------------------
// Determinism.

struct Determinism<'c> {
    cx: &'c Ctxt,
}

/// What breaks replay, and what to write instead.
enum Rule {
    Clock,
    Sleep,
    Timeout,
    Interval,
    Spawn,
    Random,
    Uuid,
    Io,
}

impl Rule {
    fn message(&self, path: &str) -> String {
        match self {
            Rule::Clock => format!(
                "`{path}` reads the wall clock, which differs when the workflow is replayed; use `ctx.now()`"
            ),
            Rule::Sleep => format!(
                "`{path}` waits on a timer that is not recorded in the workflow's history; use the durable timer `ctx.sleep(..).await`"
            ),
            Rule::Timeout => format!(
                "`{path}` races a timer that is not recorded in the workflow's history; race the call against `ctx.sleep(..)` in `duraflow::select!` instead"
            ),
            Rule::Interval => format!(
                "`{path}` ticks on a timer that is not recorded in the workflow's history; call `ctx.sleep(..).await` in a loop instead"
            ),
            Rule::Spawn => format!(
                "`{path}` runs work outside the workflow's deterministic executor; do the work in an `#[activity]` called with `ctx.activity(..)`, or run calls side by side with the deterministic `join!`"
            ),
            Rule::Random => format!(
                "`{path}` gives different numbers when the workflow is replayed; use `ctx.random_u64()`"
            ),
            Rule::Uuid => format!(
                "`{path}` gives a different id when the workflow is replayed; use `ctx.uuid()`"
            ),
            Rule::Io => format!(
                "`{path}` does I/O whose result is not recorded and may differ on replay; move this I/O into an `#[activity]` and call it with `ctx.activity(..)`"
            ),
        }
    }
}

const HTTP_CLIENTS: &[&str] = &["reqwest", "hyper", "ureq", "surf"];

fn rule_for(segs: &[String]) -> Option<Rule> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let first = *s.first()?;
    let last = *s.last()?;
    let ends = |tail: &[&str]| s.len() >= tail.len() && s[s.len() - tail.len()..] == *tail;
    let from_std_or_tokio = first == "std" || first == "tokio" || first == "async_std";

    // Wall clock.
    if last == "now" && s.len() >= 2 {
        let ty = s[s.len() - 2];
        if matches!(ty, "SystemTime" | "Instant" | "Utc" | "Local") {
            return Some(Rule::Clock);
        }
    }
    // Timers.
    if ends(&["thread", "sleep"]) {
        return Some(Rule::Sleep);
    }
    if s.len() >= 2 && (s[s.len() - 2] == "time" || (first == "tokio" && s.len() == 2)) {
        match last {
            "sleep" | "sleep_until" => return Some(Rule::Sleep),
            "timeout" | "timeout_at" => return Some(Rule::Timeout),
            "interval" | "interval_at" => return Some(Rule::Interval),
            _ => {}
        }
    }
    // Tasks and threads.
    if last == "spawn_blocking"
        || last == "spawn_local"
        || ends(&["tokio", "spawn"])
        || ends(&["task", "spawn"])
        || ends(&["thread", "spawn"])
        || ends(&["thread", "scope"])
    {
        return Some(Rule::Spawn);
    }
    // Randomness and ids.
    if (first == "rand" && matches!(last, "random" | "thread_rng" | "rng" | "random_range"))
        || (s.len() == 1 && last == "thread_rng")
        || ends(&["OsRng", "default"])
    {
        return Some(Rule::Random);
    }
    if s.len() >= 2 && s[s.len() - 2] == "Uuid" && matches!(last, "new_v4" | "new_v7" | "now_v7") {
        return Some(Rule::Uuid);
    }
    // Environment, files, network, processes, HTTP.
    if s.len() >= 2
        && s[s.len() - 2] == "env"
        && matches!(last, "var" | "var_os" | "vars" | "vars_os")
    {
        return Some(Rule::Io);
    }
    let io_module = |m: &str| matches!(m, "fs" | "net" | "process");
    if (from_std_or_tokio && s.len() >= 3 && io_module(s[1])) || (s.len() >= 2 && io_module(first))
    {
        return Some(Rule::Io);
    }
    if s.len() >= 2
        && matches!(
            (s[s.len() - 2], last),
            ("File", "open" | "create" | "options")
                | (
                    "TcpStream" | "UdpSocket" | "TcpListener",
                    "connect" | "bind"
                )
                | ("Command", "new")
        )
    {
        return Some(Rule::Io);
    }
    if HTTP_CLIENTS.contains(&first) {
        return Some(Rule::Io);
    }
    None
}

fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

impl<'ast> Visit<'ast> for Determinism<'_> {
    fn visit_stmt(&mut self, stmt: &'ast Stmt) {
        if stmt_attrs(stmt).iter().any(is_allow_attr) {
            return; // reviewed by a person: `#[allow_nondeterminism(reason = "..")]`
        }
        visit::visit_stmt(self, stmt);
    }

    fn visit_item(&mut self, _item: &'ast syn::Item) {
        // A nested item is not the workflow's own code (it may be an `#[activity]`).
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if let Expr::Path(p) = &*call.func {
            if p.qself.is_none() {
                let segs = segments(&p.path);
                if let Some(rule) = rule_for(&segs) {
                    self.cx
                        .error_spanned_by(call, rule.message(&segs.join("::")));
                }
            }
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        let segs = segments(&mac.path);
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match s.as_slice() {
            ["tokio", "select"] if !starts_biased(&mac.tokens) => self.cx.error_spanned_by(
                macro_name(mac),
                "`tokio::select!` without `biased;` picks a random ready branch, which differs when the workflow is replayed; use the deterministic `duraflow::select!` (branches are polled in the order written)",
            ),
            ["futures", "select"] | ["futures", "select_biased"] | ["futures", "future", "select"] => {
                self.cx.error_spanned_by(
                    macro_name(mac),
                    format!(
                        "`{}!` is not the workflow's deterministic select; use `duraflow::select!` (branches are polled in the order written)",
                        segs.join("::")
                    ),
                )
            }
            _ => {}
        }
        // Look inside the macro's arguments where they are expressions.
        if let Ok(exprs) =
            Punctuated::<Expr, Token![,]>::parse_terminated.parse2(mac.tokens.clone())
        {
            for e in &exprs {
                self.visit_expr(e);
            }
        } else if let Ok(exprs) = parse_select.parse2(mac.tokens.clone()) {
            for e in &exprs {
                self.visit_expr(e);
            }
        }
    }
}

/// `tokio::select!`: the smallest tokens that name a macro call.
fn macro_name(mac: &Macro) -> TokenStream {
    let mut ts = mac.path.to_token_stream();
    mac.bang_token.to_tokens(&mut ts);
    ts
}

fn starts_biased(tokens: &TokenStream) -> bool {
    let mut it = tokens.clone().into_iter();
    matches!(
        (it.next(), it.next()),
        (Some(TokenTree::Ident(i)), Some(TokenTree::Punct(p))) if i == "biased" && p.as_char() == ';'
    )
}

/// The expressions of a `select!` body: `biased;`? then `pat = future (, if cond)? => handler,` and
/// `else => handler`.
fn parse_select(input: ParseStream) -> syn::Result<Vec<Expr>> {
    let mut out = Vec::new();
    if input.peek(syn::Ident) && input.peek2(Token![;]) {
        input.parse::<syn::Ident>()?;
        input.parse::<Token![;]>()?;
    }
    while !input.is_empty() {
        if input.peek(Token![else]) {
            input.parse::<Token![else]>()?;
        } else {
            Pat::parse_single(input)?;
            input.parse::<Token![=]>()?;
            out.push(input.call(Expr::parse_without_eager_brace)?);
            if input.peek(Token![,]) && input.peek2(Token![if]) {
                input.parse::<Token![,]>()?;
                input.parse::<Token![if]>()?;
                out.push(input.call(Expr::parse_without_eager_brace)?);
            }
        }
        input.parse::<Token![=>]>()?;
        out.push(input.parse::<Expr>()?);
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// The escape hatch.

fn is_allow_attr(attr: &Attribute) -> bool {
    attr.path().is_ident(ALLOW_NONDETERMINISM)
}

/// The outer attributes of a statement (for an expression statement, those of its expression).
fn stmt_attrs(stmt: &Stmt) -> &[Attribute] {
    match stmt {
        Stmt::Local(l) => &l.attrs,
        Stmt::Macro(m) => &m.attrs,
        Stmt::Expr(e, _) => expr_attrs(e).map_or(&[], |a| a.as_slice()),
        Stmt::Item(_) => &[],
    }
}

fn stmt_attrs_mut(stmt: &mut Stmt) -> Option<&mut Vec<Attribute>> {
    match stmt {
        Stmt::Local(l) => Some(&mut l.attrs),
        Stmt::Macro(m) => Some(&mut m.attrs),
        Stmt::Expr(e, _) => expr_attrs_mut(e),
        Stmt::Item(_) => None,
    }
}

macro_rules! expr_attrs_impl {
    ($e:expr, $($variant:ident)*) => {
        match $e {
            $(Expr::$variant(x) => Some(&x.attrs),)*
            _ => None,
        }
    };
}

macro_rules! expr_attrs_mut_impl {
    ($e:expr, $($variant:ident)*) => {
        match $e {
            $(Expr::$variant(x) => Some(&mut x.attrs),)*
            _ => None,
        }
    };
}

fn expr_attrs(e: &Expr) -> Option<&Vec<Attribute>> {
    expr_attrs_impl!(e, Array Assign Async Await Binary Block Break Call Cast Closure Const Continue
        Field ForLoop Group If Index Infer Let Lit Loop Macro Match MethodCall Paren Path Range
        Reference Repeat Return Struct Try TryBlock Tuple Unary Unsafe While Yield)
}

fn expr_attrs_mut(e: &mut Expr) -> Option<&mut Vec<Attribute>> {
    expr_attrs_mut_impl!(e, Array Assign Async Await Binary Block Break Call Cast Closure Const
        Continue Field ForLoop Group If Index Infer Let Lit Loop Macro Match MethodCall Paren Path
        Range Reference Repeat Return Struct Try TryBlock Tuple Unary Unsafe While Yield)
}

/// Every `#[allow_nondeterminism]` needs a reason, and only workflows have anything to allow.
fn check_escape_hatches(cx: &Ctxt, kind: Kind, block: &syn::Block) {
    struct Hatches<'c> {
        cx: &'c Ctxt,
        kind: Kind,
    }
    impl<'ast> Visit<'ast> for Hatches<'_> {
        fn visit_stmt(&mut self, stmt: &'ast Stmt) {
            for attr in stmt_attrs(stmt).iter().filter(|a| is_allow_attr(a)) {
                if self.kind == Kind::Activity {
                    self.cx.error_spanned_by(
                        attr,
                        "`#[allow_nondeterminism]` only applies inside a `#[workflow]`: activities may do anything, so remove it",
                    );
                    continue;
                }
                check_reason(self.cx, attr);
            }
            visit::visit_stmt(self, stmt);
        }
        fn visit_item(&mut self, _item: &'ast syn::Item) {}
    }
    Hatches { cx, kind }.visit_block(block);
}

fn check_reason(cx: &Ctxt, attr: &Attribute) {
    const HINT: &str = "`#[allow_nondeterminism]` needs the reason a person accepted this statement: write `#[allow_nondeterminism(reason = \"...\")]`";
    let syn::Meta::List(list) = &attr.meta else {
        cx.error_spanned_by(attr, HINT);
        return;
    };
    let mut reason = None;
    let result = list.parse_nested_meta(|meta| {
        if meta.path.is_ident("reason") {
            let lit: syn::LitStr = meta.value()?.parse()?;
            if lit.value().trim().is_empty() {
                return Err(meta.error(HINT));
            }
            reason = Some(lit);
            Ok(())
        } else {
            Err(meta.error(
                "unknown key in `#[allow_nondeterminism]`; the only key is `reason`: write `#[allow_nondeterminism(reason = \"...\")]`",
            ))
        }
    });
    match result {
        Err(e) => cx.syn_error(e),
        Ok(()) if reason.is_none() => cx.error_spanned_by(attr, HINT),
        Ok(()) => {}
    }
}

/// Removes `#[allow_nondeterminism(..)]` from statements before the body is emitted.
pub fn strip_escape_hatches(block: &mut syn::Block) {
    struct Strip;
    impl VisitMut for Strip {
        fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
            if let Some(attrs) = stmt_attrs_mut(stmt) {
                attrs.retain(|a| !is_allow_attr(a));
            }
            visit_mut::visit_stmt_mut(self, stmt);
        }
        fn visit_item_mut(&mut self, _item: &mut syn::Item) {}
    }
    Strip.visit_block_mut(block);
}

// ---------------------------------------------------------------------------------------------------
// Heartbeats.

/// An activity that declares `heartbeat_timeout` must heartbeat, or hand its context to code that can.
fn check_heartbeats(cx: &Ctxt, f: &Function, options: &Options) {
    let Some(key) = &options.heartbeat_timeout.key else {
        return;
    };
    let Some(ctx) = f.context() else {
        cx.error_spanned_by(
            key,
            "this activity declares `heartbeat_timeout` but takes no context, so it can never heartbeat: every attempt would time out and a cancel could not reach it; add a `ctx: ActivityContext` parameter and call `ctx.heartbeat(&progress)?` in its loop, or remove `heartbeat_timeout`",
        );
        return;
    };
    let name = match &*ctx.pat {
        Pat::Ident(p) => Some(p.ident.to_string()),
        _ => None,
    };
    let mut v = Heartbeats {
        ctx: name,
        found: false,
    };
    v.visit_block(&f.item.block);
    if !v.found {
        cx.error_spanned_by(
            key,
            "this activity declares `heartbeat_timeout` but never calls `ctx.heartbeat(..)` nor passes its context on: every attempt would time out and a cancel could not reach it; call `ctx.heartbeat(&progress)?` in its loop, or remove `heartbeat_timeout`",
        );
    }
}

struct Heartbeats {
    /// The name of the context binding.
    ctx: Option<String>,
    found: bool,
}

impl Heartbeats {
    /// `ctx`, `&ctx`, `ctx.clone()`.
    fn is_ctx(&self, e: &Expr) -> bool {
        match e {
            Expr::Path(p) => {
                p.qself.is_none()
                    && self
                        .ctx
                        .as_ref()
                        .is_some_and(|name| p.path.is_ident(name.as_str()))
            }
            Expr::Reference(r) => self.is_ctx(&r.expr),
            Expr::Paren(p) => self.is_ctx(&p.expr),
            Expr::MethodCall(m) => m.method == "clone" && self.is_ctx(&m.receiver),
            _ => false,
        }
    }

    fn tokens_mention(&self, tokens: &TokenStream) -> bool {
        tokens.clone().into_iter().any(|tt| match tt {
            TokenTree::Ident(i) => i == "heartbeat" || self.ctx.as_ref().is_some_and(|c| i == c),
            TokenTree::Group(g) => self.tokens_mention(&g.stream()),
            _ => false,
        })
    }
}

impl<'ast> Visit<'ast> for Heartbeats {
    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        if m.method == "heartbeat"
            || (m.method == "clone" && self.is_ctx(&m.receiver))
            || m.args.iter().any(|a| self.is_ctx(a))
        {
            self.found = true;
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_call(&mut self, c: &'ast ExprCall) {
        if c.args.iter().any(|a| self.is_ctx(a)) {
            self.found = true;
        }
        visit::visit_expr_call(self, c);
    }

    fn visit_expr_struct(&mut self, s: &'ast syn::ExprStruct) {
        if s.fields.iter().any(|f| self.is_ctx(&f.expr)) {
            self.found = true;
        }
        visit::visit_expr_struct(self, s);
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        if l.init.as_ref().is_some_and(|i| self.is_ctx(&i.expr)) {
            self.found = true;
        }
        visit::visit_local(self, l);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        // Lenient: a macro that mentions the context or `heartbeat` may well heartbeat.
        if self.tokens_mention(&mac.tokens) {
            self.found = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rule_for;

    fn rule(path: &str) -> bool {
        let segs: Vec<String> = path.split("::").map(str::to_string).collect();
        rule_for(&segs).is_some()
    }

    #[test]
    fn flagged() {
        for p in [
            "std::time::SystemTime::now",
            "SystemTime::now",
            "Instant::now",
            "chrono::Utc::now",
            "Local::now",
            "std::thread::sleep",
            "thread::sleep",
            "tokio::time::sleep",
            "time::sleep",
            "tokio::time::timeout",
            "tokio::time::interval",
            "tokio::spawn",
            "tokio::task::spawn",
            "std::thread::spawn",
            "tokio::task::spawn_blocking",
            "spawn_blocking",
            "rand::random",
            "rand::thread_rng",
            "rand::rng",
            "thread_rng",
            "uuid::Uuid::new_v4",
            "Uuid::new_v4",
            "std::env::var",
            "env::var",
            "std::fs::read_to_string",
            "fs::write",
            "tokio::fs::read",
            "std::fs::File::open",
            "File::create",
            "std::net::TcpStream::connect",
            "TcpStream::connect",
            "reqwest::get",
            "reqwest::Client::new",
            "hyper::Client::new",
            "ureq::get",
            "surf::get",
        ] {
            assert!(rule(p), "{p} should be flagged");
        }
    }

    #[test]
    fn allowed() {
        for p in [
            "Duration::from_secs",
            "ctx::sleep",
            "sleep",
            "spawn",
            "random",
            "Uuid::nil",
            "String::from",
            "serde_json::to_value",
            "Ok",
            "time::Duration::from_secs",
        ] {
            assert!(!rule(p), "{p} should not be flagged");
        }
    }
}
