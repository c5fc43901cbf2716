//! Messages: `#[signal]`, `#[query(output = T)]` and `#[update(output = T)]` on a type, and the
//! `signals(..)`, `queries(..)`, `updates(..)` lists of `#[workflow(..)]`.
//!
//! A message macro keeps the type as written and adds the runtime's trait (`Signal`, `Query`,
//! `Update`) with its registered name and answer type; the trait's supertraits require serde, so
//! a type that does not derive it is rejected at the type. The workflow's lists become marker
//! impls (`AcceptsSignal<T>`, ..) that every send is bounded on, and the registry's metadata.

use crate::ctxt::Ctxt;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{DeriveInput, Ident, LitStr, Path, Token, Type};

/// Which message macro.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signal,
    Query,
    Update,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Signal => "#[signal]",
            Kind::Query => "#[query]",
            Kind::Update => "#[update]",
        }
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Signal => &["name"],
            Kind::Query | Kind::Update => &["name", "output"],
        }
    }
}

/// The whole expansion of a message macro on `input`.
pub fn expand(kind: Kind, args: TokenStream, input: TokenStream) -> TokenStream {
    let item: DeriveInput = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                format!(
                    "`{}` goes on a struct or an enum: write `{} #[derive(Serialize, Deserialize)] pub struct MyMessage {{ .. }}`",
                    kind.attr(),
                    kind.attr()
                ),
            )
            .to_compile_error();
            return quote!(#err #input);
        }
    };
    let cx = Ctxt::new();
    let mut name: Option<LitStr> = None;
    let mut output: Option<Type> = None;
    let parser = syn::meta::parser(|meta| {
        let valid = kind.options();
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        if !valid.contains(&key.as_str()) {
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "unknown option `{}` for `{}`; valid options: {}",
                    meta.path.to_token_stream(),
                    kind.attr(),
                    valid
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return skip(&meta);
        }
        let slot_taken = if key == "name" {
            name.is_some()
        } else {
            output.is_some()
        };
        if slot_taken {
            cx.error_spanned_by(
                &meta.path,
                format!("duplicate option `{key}`: keep one of them"),
            );
            return skip(&meta);
        }
        if key == "name" {
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().is_empty() {
                cx.error_spanned_by(&lit, "the name is empty; write `name = \"Approve\"`");
            }
            name = Some(lit);
        } else {
            output = Some(meta.value()?.parse()?);
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        cx.syn_error(e);
    }
    if kind != Kind::Signal && output.is_none() {
        cx.error_spanned_by(
            &item.ident,
            format!(
                "`{}` needs the answer's type: write `{}(output = MyAnswer)]` (`output = ()` for none)",
                kind.attr(),
                kind.attr().trim_end_matches(']')
            ),
        );
    }
    let generated = generate(kind, &item, name, output);
    match cx.check() {
        Ok(()) => quote!(#item #generated),
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn skip(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn generate(
    kind: Kind,
    item: &DeriveInput,
    name: Option<LitStr>,
    output: Option<Type>,
) -> TokenStream {
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let name = name.unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let p = quote!(::duraflow::__private);
    let output = output.map(|o| quote!(type Output = #o;));
    // The impl carries the type's span: a type that is not serde is reported at the type.
    let trait_path = match kind {
        Kind::Signal => quote_spanned!(ident.span()=> #p::Signal),
        Kind::Query => quote_spanned!(ident.span()=> #p::Query),
        Kind::Update => quote_spanned!(ident.span()=> #p::Update),
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #trait_path for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            #output
        }
    }
}

/// A workflow's declared messages: `signals(..)`, `queries(..)`, `updates(..)`.
#[derive(Default)]
pub struct Declared {
    pub signals: Vec<Path>,
    pub queries: Vec<Path>,
    pub updates: Vec<Path>,
}

impl Declared {
    /// Parses one list after its key (`signals(A, B)`); a type listed twice is an error at its
    /// second mention.
    pub fn parse_list(
        &mut self,
        cx: &Ctxt,
        meta: &ParseNestedMeta,
        key: &Ident,
    ) -> syn::Result<()> {
        if !meta.input.peek(syn::token::Paren) {
            cx.error_spanned_by(
                key,
                format!("`{key}` takes the message types in parentheses: write `{key}(MyMessage)`"),
            );
            return skip(meta);
        }
        let content;
        syn::parenthesized!(content in meta.input);
        let paths = Punctuated::<Path, Token![,]>::parse_terminated(&content)?;
        let list = if key == "signals" {
            &mut self.signals
        } else if key == "queries" {
            &mut self.queries
        } else {
            &mut self.updates
        };
        for path in paths {
            let text = path.to_token_stream().to_string();
            if list.iter().any(|p| p.to_token_stream().to_string() == text) {
                cx.error_spanned_by(
                    &path,
                    format!("`{text}` is declared twice in `{key}(..)`; keep one of them"),
                );
                continue;
            }
            list.push(path);
        }
        Ok(())
    }

    /// The marker impls, the registry's metadata, and the compile-time check of every
    /// `ctx.signal_channel::<T>()` in `body`.
    pub fn generate(&self, workflow: &Ident, body: &syn::Block) -> (TokenStream, TokenStream) {
        let p = quote!(::duraflow::__private);
        // One hidden message of each kind, so that no kind has exactly one accepted type (see
        // `Undeclared` in the runtime).
        let mut impls = quote! {
            #[automatically_derived]
            impl #p::AcceptsSignal<#p::Undeclared> for #workflow {}
            #[automatically_derived]
            impl #p::AcceptsQuery<#p::Undeclared> for #workflow {}
            #[automatically_derived]
            impl #p::AcceptsUpdate<#p::Undeclared> for #workflow {}
        };
        let mut metas = Vec::new();
        for s in &self.signals {
            impls.extend(quote_spanned!(s.span()=>
                #[automatically_derived]
                impl #p::AcceptsSignal<#s> for #workflow {}
            ));
            metas.push(quote!(#p::MessageMeta::signal::<#s>()));
        }
        for q in &self.queries {
            impls.extend(quote_spanned!(q.span()=>
                #[automatically_derived]
                impl #p::AcceptsQuery<#q> for #workflow {}
            ));
            metas.push(quote!(#p::MessageMeta::query::<#q>()));
        }
        for u in &self.updates {
            impls.extend(quote_spanned!(u.span()=>
                #[automatically_derived]
                impl #p::AcceptsUpdate<#u> for #workflow {}
            ));
            metas.push(quote!(#p::MessageMeta::update::<#u>()));
        }
        let mut channels = ChannelTypes(Vec::new());
        channels.visit_block(body);
        for ty in channels.0 {
            // The workflow's name carries the span of `T`: the error points at the turbofish.
            let w = Ident::new(&workflow.to_string(), ty.span());
            impls.extend(quote_spanned!(ty.span()=>
                const _: () = #p::assert_accepts_signal::<#w, #ty>();
            ));
        }
        (impls, quote!(::std::vec![#(#metas),*]))
    }
}

/// The `T` of every `.signal_channel::<T>()` in a body.
struct ChannelTypes(Vec<Type>);

impl<'ast> Visit<'ast> for ChannelTypes {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if call.method == "signal_channel" {
            if let Some(turbofish) = &call.turbofish {
                for arg in &turbofish.args {
                    if let syn::GenericArgument::Type(ty) = arg {
                        self.0.push(ty.clone());
                    }
                }
            }
        }
        syn::visit::visit_expr_method_call(self, call);
    }
}
