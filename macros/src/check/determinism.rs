//! The determinism check of workflow bodies: every path that names a fn breaking replay, as written or
//! through the body's own imports, in calls, in fn references and inside macro arguments.
//!
//! The check is syntactic. It sees what the body writes: its paths (`SystemTime::now`,
//! `<Instant>::now`, `::std::fs::read`), the `use` items and `as` renames declared inside the body
//! (`use std::time::Instant as I; I::now()`, `use tokio::{select, time::sleep as nap}`, globs such as
//! `use tokio::time::*`), the fns and modules the body defines itself (which shadow them), fns named
//! without a call (`let f = SystemTime::now;`), `.elapsed()` on anything, and the tokens of macro
//! arguments, parsed as expressions where they are and scanned token by token where they are not
//! (`tracing::info!(at = ?SystemTime::now())`).
//!
//! It cannot see what a macro cannot: imports and renames at module level (`use std::time::Instant
//! as Clock;` above the fn), code in helper fns or other crates the body calls, and what a value's type
//! is. A bare `fs::read(..)` is not flagged unless the body itself imports `fs` from `std`, `tokio` or
//! `async_std`: without that import it may be the user's own module `fs`. The runtime's replay check
//! is the safety net for what the macro misses: a workflow whose commands no longer match its
//! history is held (or failed, by `NondeterminismPolicy`), and nothing recorded is lost.

use super::rules;
use super::{is_allow_attr, stmt_attrs};
use crate::ctxt::Ctxt;
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use std::collections::HashMap;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, ExprCall, ExprMethodCall, ExprPath, Item, Macro, Pat, Stmt, Token, UseTree};

/// Checks a workflow's body.
pub fn check(cx: &Ctxt, block: &syn::Block) {
    Determinism {
        cx,
        scopes: Vec::new(),
    }
    .visit_block(block);
}

/// What a name stands for in a block of the body.
enum Binding {
    /// `use std::time::Instant as I;`: `I` is `std::time::Instant`.
    Import(Vec<String>),
    /// A fn, module, type or macro the body defines itself.
    Own,
}

/// The names a block declares: its `use` items and its own items, visible in the whole block.
#[derive(Default)]
struct Scope {
    names: HashMap<String, Binding>,
    /// `use tokio::time::*;`: `["tokio", "time"]`.
    globs: Vec<Vec<String>>,
}

impl Scope {
    fn of(block: &syn::Block) -> Scope {
        let mut scope = Scope::default();
        for stmt in &block.stmts {
            let Stmt::Item(item) = stmt else { continue };
            let own = match item {
                Item::Use(u) => {
                    scope.bind_use(&u.tree, &mut Vec::new());
                    continue;
                }
                Item::Fn(i) => &i.sig.ident,
                Item::Mod(i) => &i.ident,
                Item::Struct(i) => &i.ident,
                Item::Enum(i) => &i.ident,
                Item::Union(i) => &i.ident,
                Item::Type(i) => &i.ident,
                Item::Trait(i) => &i.ident,
                Item::Const(i) => &i.ident,
                Item::Static(i) => &i.ident,
                Item::Macro(syn::ItemMacro {
                    ident: Some(ident), ..
                }) => ident,
                _ => continue,
            };
            scope.names.insert(own.to_string(), Binding::Own);
        }
        scope
    }

    /// Flattens `use a::{b as c, d::*}` into names and globs.
    fn bind_use(&mut self, tree: &UseTree, prefix: &mut Vec<String>) {
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.bind_use(&p.tree, prefix);
                prefix.pop();
            }
            UseTree::Name(n) => self.bind(prefix, &n.ident, &n.ident.to_string()),
            UseTree::Rename(r) => self.bind(prefix, &r.ident, &r.rename.to_string()),
            UseTree::Glob(_) => self.globs.push(prefix.clone()),
            UseTree::Group(g) => {
                for tree in &g.items {
                    self.bind_use(tree, prefix);
                }
            }
        }
    }

    /// `name` stands for `prefix::ident` (or `prefix` itself for `self`).
    fn bind(&mut self, prefix: &[String], ident: &syn::Ident, name: &str) {
        if name == "_" {
            return;
        }
        let mut target = prefix.to_vec();
        if ident != "self" {
            target.push(ident.to_string());
        }
        if target.is_empty() {
            return;
        }
        let name = if ident == "self" && name == "self" {
            target.last().cloned().unwrap_or_default()
        } else {
            name.to_string()
        };
        self.names.insert(name, Binding::Import(target));
    }
}

/// How a path is used: called (anything it names is checked), or named without a call (only fns).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Call,
    Reference,
}

/// A path as written and as the body's imports make it.
struct Named {
    /// The path as written, for the message: `I::now`, `<Instant>::now`.
    written: String,
    /// Its segments as written; for `<T>::f` or `<T as Trait>::f`, those of `T` then `f`.
    segs: Vec<String>,
    /// `::std::..`: never an alias.
    leading_colon: bool,
}

struct Determinism<'c> {
    cx: &'c Ctxt,
    /// Innermost last.
    scopes: Vec<Scope>,
}

impl Determinism<'_> {
    fn lookup(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|s| s.names.get(name))
    }

    /// The path the body's imports make of `segs`; `None` when it is the user's own item.
    fn resolve(&self, mut segs: Vec<String>, leading_colon: bool) -> Option<Vec<String>> {
        if leading_colon {
            return Some(segs);
        }
        // An import may name another import of the body (`use std::time; use time::Instant;`); the
        // bound stops a cycle.
        for _ in 0..8 {
            match self.lookup(segs.first()?) {
                Some(Binding::Own) => return None,
                Some(Binding::Import(target)) => {
                    let rest = segs.split_off(1);
                    segs = target.iter().cloned().chain(rest).collect();
                }
                None => break,
            }
        }
        Some(segs)
    }

    /// The message for a use of `named`, if it breaks replay.
    fn judge(&self, named: &Named, how: Use) -> Option<String> {
        let resolved = self.resolve(named.segs.clone(), named.leading_colon)?;
        let mut found = rules::rule_for(&resolved).map(|rule| (rule, resolved.clone()));
        // A bare call under a glob import of the body: `use tokio::time::*; sleep(d)`.
        if found.is_none() && how == Use::Call && named.segs.len() == 1 && !named.leading_colon {
            found = self
                .scopes
                .iter()
                .rev()
                .flat_map(|s| &s.globs)
                .find_map(|glob| {
                    let full: Vec<String> = glob.iter().chain(&named.segs).cloned().collect();
                    let full = self.resolve(full, false)?;
                    rules::rule_for(&full).map(|rule| (rule, full))
                });
        }
        let (rule, full) = found?;
        if how == Use::Reference && !rules::names_a_fn(&full) {
            return None;
        }
        Some(rule.message(&display(&named.written, &named.segs, &full)))
    }

    fn report_path(&self, p: &ExprPath, how: Use, span: &dyn ToTokens) -> bool {
        let Some(named) = expr_path(p) else {
            return false;
        };
        match self.judge(&named, how) {
            Some(msg) => {
                self.cx.error_spanned_by(span, msg);
                true
            }
            None => false,
        }
    }

    /// A macro the workflow must not use (`tokio::select!` without `biased;`), also through an import.
    fn check_macro_name(
        &self,
        segs: Vec<String>,
        leading_colon: bool,
        tokens: &TokenStream,
        span: TokenStream,
    ) {
        let Some(resolved) = self.resolve(segs.clone(), leading_colon) else {
            return;
        };
        let written = segs.join("::");
        let shown = if resolved == segs {
            format!("`{written}!`")
        } else {
            format!("`{written}!` (`{}!`)", resolved.join("::"))
        };
        if let Some(msg) = rules::macro_rule(&resolved, tokens, &shown) {
            self.cx.error_spanned_by(span, msg);
        }
    }

    /// A macro's arguments: as expressions where they parse as such, token by token where not.
    fn check_macro_args(&mut self, tokens: &TokenStream) {
        if let Ok(exprs) = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
            for e in &exprs {
                self.visit_expr(e);
            }
        } else if let Ok(exprs) = parse_select.parse2(tokens.clone()) {
            for e in &exprs {
                self.visit_expr(e);
            }
        } else {
            self.scan(tokens.clone());
        }
    }

    /// Walks every token tree of a macro's arguments that do not parse as expressions, looking for
    /// paths (`SystemTime :: now`, `< Instant > :: now`), `.elapsed()` and nested macros. Never fails.
    fn scan(&mut self, tokens: TokenStream) {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tts.len() {
            match &tts[i] {
                TokenTree::Group(g) => {
                    self.scan(g.stream());
                    i += 1;
                }
                TokenTree::Punct(p) if p.as_char() == '.' => {
                    // A method or field name is not a path.
                    match (tts.get(i + 1), tts.get(i + 2)) {
                        (Some(TokenTree::Ident(m)), Some(TokenTree::Group(g)))
                            if m == "elapsed"
                                && g.delimiter() == Delimiter::Parenthesis
                                && g.stream().is_empty() =>
                        {
                            self.cx
                                .error_spanned_by(span_of(&tts[i..=i + 2]), rules::ELAPSED);
                            i += 3;
                        }
                        (Some(TokenTree::Ident(_)), _) => i += 2,
                        _ => i += 1,
                    }
                }
                _ => {
                    let Some(found) = token_path(&tts, i) else {
                        i += 1;
                        continue;
                    };
                    let end = found.end;
                    match (tts.get(end), tts.get(end + 1)) {
                        // A nested macro: `tokio::select! { .. }`.
                        (Some(TokenTree::Punct(bang)), Some(TokenTree::Group(g)))
                            if bang.as_char() == '!' && !found.qself =>
                        {
                            self.check_macro_name(
                                found.named.segs.clone(),
                                found.named.leading_colon,
                                &g.stream(),
                                span_of(&tts[i..=end]),
                            );
                            i = end + 1; // the group is scanned next
                        }
                        (Some(TokenTree::Group(g)), _)
                            if g.delimiter() == Delimiter::Parenthesis =>
                        {
                            if let Some(msg) = self.judge(&found.named, Use::Call) {
                                self.cx.error_spanned_by(span_of(&tts[i..=end]), msg);
                            }
                            i = end; // the arguments are scanned next
                        }
                        _ => {
                            if let Some(msg) = self.judge(&found.named, Use::Reference) {
                                self.cx.error_spanned_by(span_of(&tts[i..end]), msg);
                            }
                            i = end;
                        }
                    }
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Determinism<'_> {
    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.scopes.push(Scope::of(block));
        visit::visit_block(self, block);
        self.scopes.pop();
    }

    fn visit_stmt(&mut self, stmt: &'ast Stmt) {
        if stmt_attrs(stmt).iter().any(is_allow_attr) {
            return; // reviewed by a person: `#[allow_nondeterminism(reason = "..")]`
        }
        visit::visit_stmt(self, stmt);
    }

    fn visit_item(&mut self, _item: &'ast Item) {
        // A nested item is not the workflow's own code (it may be an `#[activity]`); its name and
        // its `use` items are in the block's `Scope`.
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if let Expr::Path(p) = &*call.func {
            // The call is the error's span; the path is not looked at again as a reference.
            self.report_path(p, Use::Call, call);
            for arg in &call.args {
                self.visit_expr(arg);
            }
            return;
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_expr_path(&mut self, p: &'ast ExprPath) {
        // A fn named without a call: `let f = SystemTime::now;`, `.unwrap_or_else(Instant::now)`.
        self.report_path(p, Use::Reference, p);
        visit::visit_expr_path(self, p);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        if m.method == "elapsed" && m.args.is_empty() {
            let mut span = TokenStream::new();
            m.dot_token.to_tokens(&mut span);
            m.method.to_tokens(&mut span);
            m.paren_token.surround(&mut span, |_| {});
            self.cx.error_spanned_by(span, rules::ELAPSED);
        }
        if m.method == "side_effect" && matches!(m.args.first(), Some(Expr::Closure(_))) {
            // `ctx.side_effect(|| ..)`: the closure runs once and its value is recorded in the
            // history, so what it reads may differ between runs.
            self.visit_expr(&m.receiver);
            return;
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_macro(&mut self, mac: &'ast Macro) {
        let segs = mac
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let mut name = mac.path.to_token_stream();
        mac.bang_token.to_tokens(&mut name);
        self.check_macro_name(segs, mac.path.leading_colon.is_some(), &mac.tokens, name);
        self.check_macro_args(&mac.tokens);
    }
}

/// `written`, and what the body's imports made of it when they changed it: "`I::now`
/// (`std::time::Instant::now`)".
fn display(written: &str, segs: &[String], resolved: &[String]) -> String {
    if segs == resolved {
        format!("`{written}`")
    } else {
        format!("`{written}` (`{}`)", resolved.join("::"))
    }
}

/// The path of an expression: `a::b::c`, or `<T>::f` / `<T as Trait>::f` as `T`'s path then `f`.
fn expr_path(p: &ExprPath) -> Option<Named> {
    let segs_of = |path: &syn::Path| -> Vec<String> {
        path.segments.iter().map(|s| s.ident.to_string()).collect()
    };
    match &p.qself {
        None => {
            let segs = segs_of(&p.path);
            Some(Named {
                written: segs.join("::"),
                segs,
                leading_colon: p.path.leading_colon.is_some(),
            })
        }
        Some(q) => {
            let syn::Type::Path(ty) = &*q.ty else {
                return None;
            };
            if ty.qself.is_some() {
                return None;
            }
            let mut segs = segs_of(&ty.path);
            segs.extend(segs_of(&p.path).into_iter().skip(q.position));
            Some(Named {
                written: crate::expand::tokens_text(p.to_token_stream()),
                segs,
                leading_colon: ty.path.leading_colon.is_some(),
            })
        }
    }
}

/// A path found among tokens.
struct TokenPath {
    named: Named,
    /// Written `<T>::f` or `<T as Trait>::f`.
    qself: bool,
    /// The index of the first token after the path.
    end: usize,
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// `::` at `i`.
fn is_colon2(tts: &[TokenTree], i: usize) -> bool {
    matches!(tts.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && is_punct(tts.get(i + 1), ':')
}

fn ident_at(tts: &[TokenTree], i: usize) -> Option<String> {
    match tts.get(i) {
        Some(TokenTree::Ident(id)) => Some(id.to_string()),
        _ => None,
    }
}

/// The index after the `<..>` that opens at `i`, by counting angle brackets.
fn skip_angles(tts: &[TokenTree], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, tt) in tts.iter().enumerate().skip(i) {
        if let TokenTree::Punct(p) = tt {
            match p.as_char() {
                '<' => depth += 1,
                // Not the `>` of `->` nor of `=>`.
                '>' if !(j > 0
                    && matches!(&tts[j - 1], TokenTree::Punct(q) if matches!(q.as_char(), '-' | '=') && q.spacing() == Spacing::Joint)) =>
                {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(j + 1);
                    }
                }
                ';' => return None,
                _ => {}
            }
        }
    }
    None
}

/// The path starting at token `i`: `a::b::<T>::c`, `::std::fs::read`, `<Instant>::now`.
fn token_path(tts: &[TokenTree], i: usize) -> Option<TokenPath> {
    let mut j = i;
    let mut segs = Vec::new();
    let mut leading_colon = false;
    let mut qself = false;
    if is_punct(tts.get(j), '<') {
        // `<T>::f`, `<T as Trait>::f`.
        let inner = token_path(tts, j + 1)?;
        if inner.qself {
            return None;
        }
        let close = skip_angles(tts, j)?;
        let after_type = inner.end;
        if after_type + 1 != close && ident_at(tts, after_type).as_deref() != Some("as") {
            return None;
        }
        if !is_colon2(tts, close) || ident_at(tts, close + 2).is_none() {
            return None;
        }
        segs = inner.named.segs;
        leading_colon = inner.named.leading_colon;
        qself = true;
        j = close + 2;
    } else if is_colon2(tts, j) {
        leading_colon = true;
        j += 2;
    }
    segs.push(ident_at(tts, j)?);
    j += 1;
    loop {
        if !is_colon2(tts, j) {
            break;
        }
        if let Some(next) = ident_at(tts, j + 2) {
            segs.push(next);
            j += 3;
        } else if is_punct(tts.get(j + 2), '<') {
            // A turbofish: `random::<u8>`, `Vec::<u8>::new`.
            j = skip_angles(tts, j + 2)?;
        } else {
            break;
        }
    }
    let written = if qself {
        crate::expand::tokens_text(tts[i..j].iter().cloned().collect())
    } else {
        segs.join("::")
    };
    Some(TokenPath {
        named: Named {
            written,
            segs,
            leading_colon,
        },
        qself,
        end: j,
    })
}

fn span_of(tts: &[TokenTree]) -> TokenStream {
    tts.iter().cloned().collect()
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

#[cfg(test)]
mod tests {
    use crate::ctxt::Ctxt;

    /// The messages for a workflow body, in order.
    fn messages(body: &str) -> Vec<String> {
        let block: syn::Block = syn::parse_str(body).expect("a block");
        let cx = Ctxt::new();
        super::check(&cx, &block);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn flags(body: &str, what: &str) {
        let found = messages(body);
        assert!(
            found.iter().any(|m| m.starts_with(what)),
            "{body}: expected {what}, got {found:?}"
        );
    }

    fn clean(body: &str) {
        let found = messages(body);
        assert!(found.is_empty(), "{body}: expected nothing, got {found:?}");
    }

    #[test]
    fn imports_inside_the_body() {
        flags(
            "{ use std::time::Instant as I; I::now(); }",
            "`I::now` (`std::time::Instant::now`)",
        );
        flags(
            "{ use std::{thread::{self as th}}; th::sleep(d); }",
            "`th::sleep` (`std::thread::sleep`)",
        );
        flags(
            "{ use std::time; use time::SystemTime; SystemTime::now(); }",
            "`SystemTime::now`",
        );
        flags(
            "{ use tokio::time::*; sleep(d); }",
            "`sleep` (`tokio::time::sleep`)",
        );
        flags(
            "{ use tokio::select as race; race! { _ = a => {} } }",
            "`race!` (`tokio::select!`)",
        );
        flags(
            "{ { use std::fs; } use std::fs; fs::read(p); }",
            "`fs::read` (`std::fs::read`)",
        );
    }

    #[test]
    fn scopes_and_own_items() {
        // The import is in an inner block only.
        clean("{ { use tokio::time::sleep; } sleep(d); }");
        // The body's own fn or module shadows it.
        clean("{ use tokio::time::sleep; { fn sleep(_: u8) {} sleep(1); } }");
        clean("{ mod fs { pub fn read() {} } fs::read(); }");
        clean("{ use crate::fs as storage; storage::save(); }");
        // A glob of the user's module, and a local named like a fn are not a rule's path.
        clean("{ use crate::jobs::*; sleep(d); }");
        clean("{ let sleep = 1; let _ = sleep; }");
    }

    #[test]
    fn paths_calls_and_references() {
        flags("{ <Instant>::now(); }", "`<Instant>::now`");
        flags(
            "{ <OsRng as Default>::default(); }",
            "`<OsRng as Default>::default`",
        );
        flags("{ let f = SystemTime::now; }", "`SystemTime::now`");
        flags("{ x.elapsed(); }", "`.elapsed()`");
        // A type, variant or constant named without a call is not a fn.
        clean("{ let _ = reqwest::StatusCode::OK; let _ = std::process::ExitCode::SUCCESS; }");
        // One error per call, not one for the call and one for its path.
        assert_eq!(messages("{ SystemTime::now(); }").len(), 1);
    }

    #[test]
    fn macro_tokens() {
        flags(
            "{ tracing::info!(at = ?SystemTime::now(), \"x\"); }",
            "`SystemTime::now`",
        );
        flags("{ vec![Instant::now(); 2]; }", "`Instant::now`");
        flags("{ m!(a => x.elapsed()); }", "`.elapsed()`");
        flags("{ m!(a => ::std::fs::read(p)); }", "`std::fs::read`");
        flags("{ m!(a => <Instant>::now()); }", "`<Instant>::now`");
        flags("{ m!(a => rand::random::<u8>()); }", "`rand::random`");
        flags(
            "{ m!(@ tokio::select! { _ = a => {} }); }",
            "`tokio::select!`",
        );
        clean("{ m!(@ tokio::select! { biased; _ = a => {} }); }");
        flags(
            "{ use std::time::Instant as I; m!(t = ?I::now()); }",
            "`I::now` (`std::time::Instant::now`)",
        );
        clean("{ m!(a => crate::fs::save(), b => x.now(), c => Vec::<u8>::new()); }");
    }

    #[test]
    fn tokens_that_parse_as_nothing_are_fine() {
        for body in [
            "{ m!(~~ @ ## => < > :: :: <); }",
            "{ m!(< Instant as); }",
            "{ m!(<Vec<u8>>::new()); }",
            "{ m!(:: ; . .. ...); }",
            "{ m!('a: loop {} -> => >>); }",
        ] {
            clean(body);
        }
    }
}
