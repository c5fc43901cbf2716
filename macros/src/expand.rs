//! Code generation: `from_syn -> check -> generate`, with every error collected and emitted beside the
//! generated items (or a stub with the same names), so the user's item is never dropped.

use crate::ast::{Function, Kind, Param, Parsed};
use crate::attr::{Dur, Options};
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ItemFn, LitStr, Type};

/// The whole expansion of `#[activity(args)]` / `#[workflow(args)]` on `input`.
pub fn expand(kind: Kind, args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(err) => {
            // Another kind of item gets the macro's message; a fn that syn cannot read gets syn's own
            // error, so the real problem is not hidden behind a wrong one.
            let err = match syn::parse2::<syn::Item>(input.clone()) {
                Ok(_) => syn::Error::new(
                    Span::call_site(),
                    format!(
                        "`{}` goes on an `async fn`: write `{} pub async fn name(..) -> Result<.., {}> {{ .. }}`",
                        kind.attr(),
                        kind.attr(),
                        kind.error()
                    ),
                ),
                Err(_) => err,
            }
            .to_compile_error();
            // Give the item back unchanged.
            return quote!(#err #input);
        }
    };

    let cx = Ctxt::new();
    let options = Options::from_args(&cx, kind, args);
    let generated = match Function::from_syn(&cx, kind, &item) {
        Parsed::Complete(f) => {
            check::check(&cx, &f, &options);
            generate(&f, &options)
        }
        Parsed::Method => {
            // Given back in its `impl` block, its body checked and without the escape hatches.
            check::check_body(&cx, kind, &item.block);
            let mut item = item.clone();
            check::strip_escape_hatches(&mut item.block);
            item.to_token_stream()
        }
        Parsed::Incomplete => {
            check::check_body(&cx, kind, &item.block);
            stub(&item)
        }
    };
    match cx.check() {
        Ok(()) => generated,
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #generated)
        }
    }
}

/// The fn's attributes, sorted by where they go.
struct Attrs<'a> {
    /// `///` docs and `#[doc]`: on the struct.
    docs: Vec<&'a Attribute>,
    /// `#[cfg]`: on every generated item.
    cfgs: Vec<&'a Attribute>,
    /// Everything else (`#[allow]`, `#[tracing::instrument]`, ..): on the body's `call` fn.
    rest: Vec<&'a Attribute>,
}

fn split_attrs(attrs: &[Attribute]) -> Attrs<'_> {
    let mut out = Attrs {
        docs: Vec::new(),
        cfgs: Vec::new(),
        rest: Vec::new(),
    };
    for a in attrs {
        if a.path().is_ident("doc") {
            out.docs.push(a);
        } else if a.path().is_ident("cfg") {
            out.cfgs.push(a);
        } else {
            out.rest.push(a);
        }
    }
    out
}

/// The unit struct that names the definition.
fn definition_struct(item: &ItemFn, attrs: &Attrs) -> TokenStream {
    let ident = &item.sig.ident;
    let vis = &item.vis;
    let docs = &attrs.docs;
    let cfgs = &attrs.cfgs;
    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default)]
        #vis struct #ident;
    }
}

/// On a signature that cannot become a definition: the struct, so uses of the name resolve, and the
/// body kept on its `call` fn with the signature as written, so the compiler still reports the errors
/// inside it (as `tracing-attributes` keeps the body). What cannot be written on an inherent async fn
/// (`const`, an ABI, `...`) is left out: the macro has reported it already. Errors, not lints: the
/// item is broken, and its unused parameters are not news.
fn stub(item: &ItemFn) -> TokenStream {
    let attrs = split_attrs(&item.attrs);
    let strukt = definition_struct(item, &attrs);
    let ident = &item.sig.ident;
    let cfgs = &attrs.cfgs;
    let mut sig = call_sig(&item.sig);
    sig.constness = None;
    sig.abi = None;
    sig.variadic = None;
    let body = call_fn(item, &attrs, sig);
    quote! {
        #strukt

        #(#cfgs)*
        impl #ident {
            #[allow(unused)]
            #body
        }
    }
}

/// The user's signature as the inherent `call` fn: renamed, and `async` (a missing `async` is
/// reported, and generating as if it were there avoids follow-on errors).
fn call_sig(sig: &syn::Signature) -> syn::Signature {
    let mut sig = sig.clone();
    sig.ident = Ident::new("call", sig.ident.span());
    if sig.asyncness.is_none() {
        sig.asyncness = Some(syn::Token![async](sig.fn_token.span));
    }
    sig
}

/// The body, as the user wrote it (without the escape hatches), on `call`.
fn call_fn(item: &ItemFn, attrs: &Attrs, sig: syn::Signature) -> TokenStream {
    let vis = &item.vis;
    let rest = &attrs.rest;
    let mut block = (*item.block).clone();
    check::strip_escape_hatches(&mut block);
    let call_doc = format!(
        "Runs the body of `{}` directly, without a worker: for unit tests.",
        item.sig.ident.unraw()
    );
    quote! {
        #[doc = #call_doc]
        #(#rest)*
        #vis #sig #block
    }
}

fn generate(f: &Function, options: &Options) -> TokenStream {
    let item = f.item;
    let ident = &item.sig.ident;
    let attrs = split_attrs(&item.attrs);
    let cfgs = &attrs.cfgs;
    let strukt = definition_struct(item, &attrs);

    // The body, as the user wrote it, on an inherent `call` fn.
    let call = call_fn(item, &attrs, call_sig(&item.sig));

    // Input: `()`, the one type, or a tuple; the generated locals are hygienic.
    let site = Span::mixed_site();
    let ctx_arg = Ident::new("__ctx", site);
    let input_arg = Ident::new("__input", site);
    let input_tys: Vec<&Type> = f.inputs().map(|p| &*p.ty).collect();
    let arg_names: Vec<Ident> = (0..input_tys.len())
        .map(|i| format_ident!("__arg{}", i, span = site))
        .collect();
    // A tuple's parentheses carry the span of the parameter list, so an error about the tuple (an
    // input that does not serialize) points at the user's parameters.
    let input_ty = match input_tys.as_slice() {
        [] => quote!(()),
        [one] => quote!(#one),
        many => {
            let mut group = Group::new(Delimiter::Parenthesis, quote!(#(#many),*));
            group.set_span(item.sig.paren_token.span.join());
            group.into_token_stream()
        }
    };
    let input_type_name = match input_tys.as_slice() {
        [] => "()".to_string(),
        [one] => type_name(one),
        many => format!(
            "({})",
            many.iter()
                .map(|t| type_name(t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let destructure = match arg_names.as_slice() {
        [] => quote!(let () = #input_arg;),
        [one] => quote!(let #one = #input_arg;),
        many => quote!(let (#(#many),*) = #input_arg;),
    };
    let mut next_input = arg_names.iter();
    let call_args: Vec<&Ident> = f
        .params
        .iter()
        .filter_map(|p| match p {
            Param::Context(_) => Some(&ctx_arg),
            Param::Input(_) => next_input.next(),
        })
        .collect();
    let unused_ctx = f.context().is_none().then(|| quote!(let _ = #ctx_arg;));

    let output_ty = f.output;
    let output_type_name = type_name(output_ty);
    let registered = options
        .name
        .value
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));

    // `E` of the user's `Result` converts into the runtime's error; a failure points at `E` (or at the
    // return type when an alias hides it).
    let error_span = f.error.unwrap_or(f.return_type).span();
    let err_local = Ident::new("__e", error_span);

    let p = quote!(::duraflow::__private);
    let (definition_trait, context_ty, error_ty, kind_variant, options_ty) = match f.kind {
        Kind::Activity => (
            quote!(#p::ActivityDefinition),
            quote!(#p::ActivityContext),
            quote!(#p::ActivityError),
            quote!(Activity),
            quote!(#p::ActivityOptions),
        ),
        Kind::Workflow => (
            quote!(#p::WorkflowDefinition),
            quote!(#p::WorkflowContext),
            quote!(#p::WorkflowError),
            quote!(Workflow),
            quote!(#p::WorkflowOptions),
        ),
    };
    let convert = quote_spanned!(error_span=>
        ::core::convert::Into::<#error_ty>::into(#err_local)
    );
    let (cancel_item, cancellable, erased) = match f.kind {
        Kind::Activity => {
            let marker = if options.heartbeat_timeout.key.is_some() {
                quote!(#p::Cancellable)
            } else {
                quote!(#p::NotCancellable)
            };
            (
                quote!(type Cancel = #marker;),
                quote!(<#marker as #p::CancelCapability>::CANCELLABLE),
                quote!(#p::DynActivity),
            )
        }
        Kind::Workflow => (quote!(), quote!(false), quote!(#p::DynWorkflow)),
    };
    let option_sets = option_assignments(f.kind, options);
    // Registering a workflow registers what its body calls.
    let callees = match f.kind {
        Kind::Workflow => crate::callees::generate(&crate::callees::collect(item)),
        Kind::Activity => quote!(),
    };
    let (message_impls, message_metas) = match f.kind {
        Kind::Workflow => options.messages.generate(ident, &item.block),
        Kind::Activity => (quote!(), quote!(::std::vec::Vec::new())),
    };

    let lints = quote! {
        #[automatically_derived]
        #[allow(unused_qualifications, clippy::all, clippy::pedantic, clippy::nursery)]
    };

    quote! {
        #strukt

        #(#cfgs)*
        impl #ident {
            #call
        }

        #(#cfgs)*
        #lints
        impl #definition_trait for #ident {
            type Input = #input_ty;
            type Output = #output_ty;
            #cancel_item

            fn name(&self) -> &'static str {
                #registered
            }

            fn options(&self) -> #options_ty {
                #[allow(unused_mut)]
                let mut __o = <#options_ty as ::core::default::Default>::default();
                #(#option_sets)*
                __o
            }

            fn meta(&self) -> #p::DefinitionMeta {
                #p::DefinitionMeta {
                    name: ::std::string::String::from(#registered),
                    kind: #p::DefinitionKind::#kind_variant,
                    options: #p::serde_json::to_value(#definition_trait::options(self))
                        .unwrap_or(#p::serde_json::Value::Null),
                    input_type: ::std::string::String::from(#input_type_name),
                    output_type: ::std::string::String::from(#output_type_name),
                    cancellable: #cancellable,
                    messages: #message_metas,
                }
            }

            fn execute(
                &self,
                #ctx_arg: #context_ty,
                #input_arg: Self::Input,
            ) -> #p::BoxFuture<'static, ::core::result::Result<Self::Output, #error_ty>> {
                #unused_ctx
                #destructure
                ::std::boxed::Box::pin(async move {
                    match Self::call(#(#call_args),*).await {
                        ::core::result::Result::Ok(__v) => ::core::result::Result::Ok(__v),
                        ::core::result::Result::Err(#err_local) => ::core::result::Result::Err(#convert),
                    }
                })
            }

            #callees
        }

        #message_impls

        #(#cfgs)*
        #lints
        impl #p::Register for #ident {
            fn into_definition(self) -> #p::AnyDefinition {
                #p::AnyDefinition::#kind_variant(#erased::new(self))
            }
        }

        #(#cfgs)*
        #p::inventory::submit! {
            #p::Registration::#kind_variant(|| #erased::new(#ident))
        }
    }
}

fn duration(d: &Dur) -> TokenStream {
    let ms = Literal::u64_suffixed(d.millis);
    quote_spanned!(d.lit.span()=> ::core::time::Duration::from_millis(#ms))
}

fn some(value: TokenStream) -> TokenStream {
    quote!(::core::option::Option::Some(#value))
}

/// `__o.field = value;` for every option the user set.
fn option_assignments(kind: Kind, o: &Options) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut set_dur = |field: &str, d: &Option<Dur>| {
        if let Some(d) = d {
            let field = Ident::new(field, Span::call_site());
            let v = some(duration(d));
            out.push(quote!(__o.#field = #v;));
        }
    };
    match kind {
        Kind::Activity => {
            set_dur("start_to_close_timeout", &o.start_to_close_timeout.value);
            set_dur(
                "schedule_to_close_timeout",
                &o.schedule_to_close_timeout.value,
            );
            set_dur(
                "schedule_to_start_timeout",
                &o.schedule_to_start_timeout.value,
            );
            set_dur("heartbeat_timeout", &o.heartbeat_timeout.value);
        }
        Kind::Workflow => set_dur("execution_timeout", &o.execution_timeout.value),
    }
    if let Some(q) = &o.task_queue.value {
        out.push(
            quote!(__o.task_queue = ::core::option::Option::Some(::std::string::String::from(#q));),
        );
    }
    if let Some(r) = &o.retry.value {
        if let Some(d) = &r.initial_interval.value {
            let v = duration(d);
            out.push(quote!(__o.retry_policy.initial_interval = #v;));
        }
        if let Some((c, _)) = &r.backoff_coefficient.value {
            let v = Literal::f64_suffixed(*c);
            out.push(quote!(__o.retry_policy.backoff_coefficient = #v;));
        }
        if let Some(d) = &r.maximum_interval.value {
            let v = some(duration(d));
            out.push(quote!(__o.retry_policy.maximum_interval = #v;));
        }
        if let Some(n) = &r.maximum_attempts.value {
            let v = Literal::u32_suffixed(*n);
            out.push(quote!(__o.retry_policy.maximum_attempts = #v;));
        }
        if let Some(types) = &r.non_retryable.value {
            out.push(quote! {
                __o.retry_policy.non_retryable_error_types =
                    ::std::vec![#(::std::string::String::from(#types)),*];
            });
        }
    }
    out
}

/// A type as the user wrote it, for metadata and messages: `Vec<String>`, `(i64, bool)`, `&'a str`.
pub fn type_name(ty: &Type) -> String {
    tokens_text(ty.to_token_stream())
}

/// Tokens as rustfmt would write them, for messages: `<Instant as Default>::default`.
pub fn tokens_text(tokens: TokenStream) -> String {
    let mut out = String::new();
    render(tokens, &mut out, &mut false);
    out
}

/// Writes tokens the way rustfmt would for a type; `word` is whether the last token was a word.
fn render(tokens: TokenStream, out: &mut String, word: &mut bool) {
    use proc_macro2::TokenTree;
    for tt in tokens {
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                *word = false;
                render(g.stream(), out, word);
                let trimmed = out.trim_end().len();
                out.truncate(trimmed);
                out.push_str(close);
                *word = g.delimiter() == Delimiter::None && *word;
            }
            TokenTree::Ident(i) => {
                if *word {
                    out.push(' ');
                }
                out.push_str(&i.to_string());
                *word = true;
            }
            TokenTree::Literal(l) => {
                if *word {
                    out.push(' ');
                }
                out.push_str(&l.to_string());
                *word = true;
            }
            TokenTree::Punct(p) => {
                match p.as_char() {
                    '-' if p.spacing() == proc_macro2::Spacing::Joint => out.push_str(" -"),
                    '>' if out.ends_with(" -") => out.push_str("> "),
                    ',' | ';' => {
                        out.push(p.as_char());
                        out.push(' ');
                    }
                    '+' | '=' => {
                        out.push(' ');
                        out.push(p.as_char());
                        out.push(' ');
                    }
                    c => out.push(c),
                }
                *word = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn type_names() {
        let t = |s: &str| type_name(&syn::parse_str(s).unwrap());
        assert_eq!(t("i64"), "i64");
        assert_eq!(t("Vec<String>"), "Vec<String>");
        assert_eq!(
            t("std::collections::HashMap<String, Vec<u8>>"),
            "std::collections::HashMap<String, Vec<u8>>"
        );
        assert_eq!(t("(i64, bool)"), "(i64, bool)");
        assert_eq!(t("()"), "()");
        assert_eq!(t("[u8; 4]"), "[u8; 4]");
        assert_eq!(t("(u8,)"), "(u8,)");
        assert_eq!(t("&'a str"), "&'a str");
        assert_eq!(
            t("Box<dyn Fn() -> u8 + Send>"),
            "Box<dyn Fn() -> u8 + Send>"
        );
        assert_eq!(
            t("Option<(u8, ::serde_json::Value)>"),
            "Option<(u8, ::serde_json::Value)>"
        );
    }
}
