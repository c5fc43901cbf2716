//! Rules across the whole item: determinism of workflow bodies, the `#[allow_nondeterminism]` escape
//! hatch, and heartbeats of activities that declare a heartbeat timeout.
//!
//! The determinism check is syntactic (`determinism.rs` says what it sees and what it cannot); the
//! table of what breaks replay is `rules.rs`.

mod determinism;
mod rules;

use crate::ast::{Function, Kind};
use crate::attr::Options;
use crate::ctxt::Ctxt;
use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, ExprCall, Macro, Pat, Stmt};

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
        determinism::check(cx, block);
    }
}

// ---------------------------------------------------------------------------------------------------
// The escape hatch.

pub(crate) fn is_allow_attr(attr: &Attribute) -> bool {
    attr.path().is_ident(ALLOW_NONDETERMINISM)
}

/// The outer attributes of a statement (for an expression statement, those of its expression).
pub(crate) fn stmt_attrs(stmt: &Stmt) -> &[Attribute] {
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
