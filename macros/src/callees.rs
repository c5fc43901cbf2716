//! The definitions a workflow's body calls: every `.activity(def, ..)`, `.local_activity(def, ..)`
//! and `.child_workflow(def, ..)` whose first argument is a path (`charge_card`,
//! `payments::charge_card`), so that registering the workflow registers them too.
//!
//! A token scan of the body (macro arguments included: `join!`, `select!`), cheap and
//! syntactic. What it cannot see is left to registration by hand: a definition passed through a
//! variable, or returned by a call. A name the body binds (a `let`, a parameter of the fn or of a
//! closure, an item declared inside the body) is a variable there, not a definition: it is left
//! out, so the generated code never names something that only exists inside the body.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use std::collections::BTreeSet;
use syn::visit::{self, Visit};

/// What a call makes of its first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CalleeKind {
    /// `.activity(..)` and `.local_activity(..)`.
    Activity,
    /// `.child_workflow(..)`.
    Workflow,
}

/// A callee as written: its kind and its path's tokens (`a::b`), in the order first seen.
#[derive(Debug)]
pub struct Callee {
    pub kind: CalleeKind,
    pub path: Vec<TokenTree>,
}

/// The callees of a workflow body, each once.
pub fn collect(item: &syn::ItemFn) -> Vec<Callee> {
    let mut bound = Bindings::default();
    for input in &item.sig.inputs {
        if let syn::FnArg::Typed(t) = input {
            bound.visit_pat(&t.pat);
        }
    }
    bound.visit_block(&item.block);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    scan(
        item.block.to_token_stream(),
        &bound.names,
        &mut seen,
        &mut out,
    );
    out
}

/// `fn callees(&self)` for the workflow's definition trait: each callee through the runtime's
/// probe (a path that names no definition of the right kind registers nothing).
pub fn generate(callees: &[Callee]) -> TokenStream {
    if callees.is_empty() {
        return TokenStream::new();
    }
    let p = quote!(::duraflow::__private);
    let pushes = callees.iter().map(|c| {
        let path: TokenStream = c.path.iter().cloned().collect();
        match c.kind {
            CalleeKind::Activity => {
                quote!(__c.extend((&#p::Callee(#path)).activity_callee());)
            }
            CalleeKind::Workflow => {
                quote!(__c.extend((&#p::Callee(#path)).workflow_callee());)
            }
        }
    });
    quote! {
        fn callees(&self) -> ::std::vec::Vec<#p::AnyDefinition> {
            #[allow(unused_imports)]
            use #p::{ActivityCallee as _, NotActivityCallee as _, NotWorkflowCallee as _, WorkflowCallee as _};
            let mut __c = ::std::vec::Vec::new();
            #(#pushes)*
            __c
        }
    }
}

/// The names a body binds: they are variables (or items local to the body) wherever they appear.
#[derive(Default)]
struct Bindings {
    names: BTreeSet<String>,
}

impl<'ast> Visit<'ast> for Bindings {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.names.insert(p.ident.to_string());
        visit::visit_pat_ident(self, p);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        let ident = match item {
            syn::Item::Fn(f) => Some(&f.sig.ident),
            syn::Item::Const(c) => Some(&c.ident),
            syn::Item::Static(s) => Some(&s.ident),
            syn::Item::Struct(s) => Some(&s.ident),
            syn::Item::Use(_) => None,
            _ => None,
        };
        if let Some(i) = ident {
            self.names.insert(i.to_string());
        }
        // A `use` inside the body brings names the generated code would not see.
        if let syn::Item::Use(u) = item {
            collect_use(&u.tree, &mut self.names);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // `let x` inside a macro's tokens (`select!`, `join!` arguments do not bind, but a block
        // inside one may).
        let tts: Vec<TokenTree> = mac.tokens.clone().into_iter().collect();
        lets_in(&tts, &mut self.names);
        bound_before_eq(&tts, &mut self.names);
    }
}

fn collect_use(tree: &syn::UseTree, names: &mut BTreeSet<String>) {
    match tree {
        syn::UseTree::Path(p) => collect_use(&p.tree, names),
        syn::UseTree::Name(n) => {
            names.insert(n.ident.to_string());
        }
        syn::UseTree::Rename(r) => {
            names.insert(r.rename.to_string());
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| collect_use(t, names)),
        syn::UseTree::Glob(_) => {}
    }
}

/// In each `,`- or `;`-separated part of a macro's tokens, the names before its first `=`: a
/// `select!` branch's pattern (`v = fut => ..`), an assignment. More than the bindings, never
/// fewer (a name left out is only a callee the macro does not register).
fn bound_before_eq(tts: &[TokenTree], names: &mut BTreeSet<String>) {
    fn idents(tt: &TokenTree, names: &mut BTreeSet<String>) {
        match tt {
            TokenTree::Ident(i) => {
                names.insert(i.to_string());
            }
            TokenTree::Group(g) => g.stream().into_iter().for_each(|t| idents(&t, names)),
            _ => {}
        }
    }
    let mut part: Vec<&TokenTree> = Vec::new();
    let mut seen_eq = false;
    for tt in tts {
        match tt {
            TokenTree::Punct(p) if p.as_char() == ',' || p.as_char() == ';' => {
                part.clear();
                seen_eq = false;
            }
            TokenTree::Punct(p) if p.as_char() == '=' && !seen_eq => {
                seen_eq = true;
                for t in &part {
                    idents(t, names);
                }
            }
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                bound_before_eq(&inner, names);
                part.push(tt);
            }
            _ => part.push(tt),
        }
    }
}

/// `let [mut] name` and `|name|` in raw tokens, recursively.
fn lets_in(tts: &[TokenTree], names: &mut BTreeSet<String>) {
    for (i, tt) in tts.iter().enumerate() {
        match tt {
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                lets_in(&inner, names);
            }
            TokenTree::Ident(id) if id == "let" => {
                let mut j = i + 1;
                if matches!(tts.get(j), Some(TokenTree::Ident(m)) if m == "mut") {
                    j += 1;
                }
                if let Some(TokenTree::Ident(n)) = tts.get(j) {
                    names.insert(n.to_string());
                }
            }
            TokenTree::Punct(p) if p.as_char() == '|' => {
                if let Some(TokenTree::Ident(n)) = tts.get(i + 1) {
                    names.insert(n.to_string());
                }
            }
            _ => {}
        }
    }
}

/// Finds `. method ( path , ..)` in `tokens`, recursively.
fn scan(
    tokens: TokenStream,
    bound: &BTreeSet<String>,
    seen: &mut BTreeSet<(CalleeKind, String)>,
    out: &mut Vec<Callee>,
) {
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in tts.iter().enumerate() {
        if let TokenTree::Group(g) = tt {
            scan(g.stream(), bound, seen, out);
            continue;
        }
        let TokenTree::Punct(dot) = tt else { continue };
        if dot.as_char() != '.' {
            continue;
        }
        let kind = match tts.get(i + 1) {
            Some(TokenTree::Ident(m)) if m == "activity" || m == "local_activity" => {
                CalleeKind::Activity
            }
            Some(TokenTree::Ident(m)) if m == "child_workflow" => CalleeKind::Workflow,
            _ => continue,
        };
        let Some(TokenTree::Group(args)) = tts.get(i + 2) else {
            continue;
        };
        if args.delimiter() != Delimiter::Parenthesis {
            continue;
        }
        if let Some(path) = first_arg_path(args.stream(), bound) {
            let key = (kind, path.iter().map(|t| t.to_string()).collect::<String>());
            if seen.insert(key) {
                out.push(Callee { kind, path });
            }
        }
    }
}

/// The first argument, if it is a plain path (`a`, `a::b`, `::a::b`, `self::a`) that does not
/// start with a name the body binds, and is not `self` or starts with `Self`.
fn first_arg_path(args: TokenStream, bound: &BTreeSet<String>) -> Option<Vec<TokenTree>> {
    let mut path = Vec::new();
    for tt in args {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => break,
            TokenTree::Punct(p) if p.as_char() == ':' => path.push(tt),
            TokenTree::Ident(_) => path.push(tt),
            _ => return None,
        }
    }
    // Idents and `::` alternate; the first ident is not a binding.
    let idents: Vec<String> = path
        .iter()
        .filter_map(|t| match t {
            TokenTree::Ident(i) => Some(i.to_string()),
            _ => None,
        })
        .collect();
    let first = idents.first()?;
    let colons = path.len() - idents.len();
    let leading = matches!(path.first(), Some(TokenTree::Punct(_)));
    let expected_colons = 2 * (idents.len() - 1) + if leading { 2 } else { 0 };
    let this = first == "Self" || (first == "self" && idents.len() == 1);
    if colons != expected_colons || bound.contains(first) || this {
        return None;
    }
    // Adjacent idents (`a b`) are not a path.
    let mut last_ident = false;
    for t in &path {
        let is_ident = matches!(t, TokenTree::Ident(_));
        if is_ident && last_ident {
            return None;
        }
        last_ident = is_ident;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<(CalleeKind, String)> {
        let item: syn::ItemFn = syn::parse_str(src).unwrap();
        collect(&item)
            .into_iter()
            .map(|c| {
                let p: TokenStream = c.path.into_iter().collect();
                (c.kind, p.to_string().replace(' ', ""))
            })
            .collect()
    }

    #[test]
    fn calls_in_the_body_and_in_macros_are_found_once() {
        let found = names(
            r#"async fn order(ctx: WorkflowContext, def: X) -> Result<(), WorkflowError> {
                let a = ctx.activity(charge_card, 1).await?;
                let b = ctx.local_activity(crate::stock::reserve, (1, 2)).await?;
                let (c, d) = duraflow::join!(ctx.activity(charge_card, 2), ctx.activity(ship, 3));
                let e = ctx.child_workflow(payment, 5).start();
                let f = ctx.activity(def, 1);
                let g = ctx.activity(self::refund, 1);
                let h = ctx.activity(defs[0], 1);
                let k = ctx.activity(pick(), 1);
                let chosen = refund;
                let i = ctx.activity(chosen, 1);
                async move { ctx.activity(::other::notify, ()).await };
                duraflow::select! {
                    picked = ctx.activity(charge_card, 9) => ctx.activity(picked, 1),
                    Some(found) = next() => ctx.activity(found, 2),
                };
                Ok(())
            }"#,
        );
        assert_eq!(
            found,
            vec![
                (CalleeKind::Activity, "charge_card".to_string()),
                (CalleeKind::Activity, "crate::stock::reserve".to_string()),
                (CalleeKind::Activity, "ship".to_string()),
                (CalleeKind::Workflow, "payment".to_string()),
                (CalleeKind::Activity, "self::refund".to_string()),
                (CalleeKind::Activity, "::other::notify".to_string()),
            ],
            "a parameter (`def`), an index, a call and a `let` binding are not definitions the macro can name"
        );
    }

    #[test]
    fn each_callee_goes_through_the_probe_of_its_kind() {
        let item: syn::ItemFn = syn::parse_str(
            "async fn w(ctx: C) -> R { ctx.activity(pay, 1).await?; ctx.child_workflow(a::ship, 2).await }",
        )
        .unwrap();
        let out = generate(&collect(&item)).to_string();
        assert!(out.contains("fn callees (& self)"), "{out}");
        assert!(
            out.contains("(& :: duraflow :: __private :: Callee (pay)) . activity_callee ()"),
            "{out}"
        );
        assert!(
            out.contains("(& :: duraflow :: __private :: Callee (a :: ship)) . workflow_callee ()"),
            "{out}"
        );
    }

    #[test]
    fn a_body_without_calls_generates_nothing() {
        let item: syn::ItemFn = syn::parse_str("async fn w(ctx: C) -> R { Ok(()) }").unwrap();
        assert!(generate(&collect(&item)).is_empty());
    }
}
