//! A typed model of the annotated fn. It borrows the user's tokens, so every later error and every
//! generated type points at what the user wrote.

use crate::ctxt::Ctxt;
use syn::{FnArg, GenericArgument, ItemFn, PatType, PathArguments, ReturnType, Type};

/// Which macro.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Activity,
    Workflow,
}

impl Kind {
    /// `#[activity]`
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Activity => "#[activity]",
            Kind::Workflow => "#[workflow]",
        }
    }

    /// The context type this kind runs with.
    pub fn context(self) -> &'static str {
        match self {
            Kind::Activity => "ActivityContext",
            Kind::Workflow => "WorkflowContext",
        }
    }

    /// The error type its `Result` converts into.
    pub fn error(self) -> &'static str {
        match self {
            Kind::Activity => "ActivityError",
            Kind::Workflow => "WorkflowError",
        }
    }

    fn other(self) -> Kind {
        match self {
            Kind::Activity => Kind::Workflow,
            Kind::Workflow => Kind::Activity,
        }
    }
}

/// One parameter of the fn, by position.
pub enum Param<'a> {
    /// The `ActivityContext` / `WorkflowContext` parameter.
    Context(&'a PatType),
    /// An input, carried in the definition's `Input`.
    Input(&'a PatType),
}

/// The annotated fn, when its signature can become a definition.
pub struct Function<'a> {
    pub kind: Kind,
    pub item: &'a ItemFn,
    /// Every parameter, in the user's order.
    pub params: Vec<Param<'a>>,
    /// `T` of `Result<T, E>`.
    pub output: &'a Type,
    /// The whole return type as written (`Result<T, E>`, or an alias such as `anyhow::Result<T>`).
    pub return_type: &'a Type,
    /// `E` of `Result<T, E>`, when written.
    pub error: Option<&'a Type>,
}

/// What the signature turned out to be.
pub enum Parsed<'a> {
    /// A definition can be generated (there may still be errors in `Ctxt` that do not change its shape,
    /// such as a missing `async`).
    Complete(Function<'a>),
    /// The fn is a method (`self` receiver): it lives in an `impl` block, so it is given back unchanged.
    Method,
    /// The signature has no definition shape (generic, no `Result`, ..): only a stub is generated.
    Incomplete,
}

impl<'a> Function<'a> {
    pub fn from_syn(cx: &Ctxt, kind: Kind, item: &'a ItemFn) -> Parsed<'a> {
        let sig = &item.sig;
        let attr = kind.attr();
        let mut complete = true;

        if sig.asyncness.is_none() {
            // Not fatal: the definition is generated as if it were async, so no follow-on errors.
            cx.error_spanned_by(
                sig.fn_token,
                format!(
                    "`{attr}` goes on an `async fn`: write `async fn {}(..)`",
                    sig.ident
                ),
            );
        }
        if let Some(c) = &sig.constness {
            cx.error_spanned_by(c, format!("`{attr}` fns cannot be `const`: remove `const`"));
            complete = false;
        }
        if let Some(u) = &sig.unsafety {
            cx.error_spanned_by(
                u,
                format!("`{attr}` fns cannot be `unsafe`: remove `unsafe` and use an `unsafe` block inside"),
            );
            complete = false;
        }
        if let Some(abi) = &sig.abi {
            cx.error_spanned_by(
                abi,
                format!("`{attr}` fns cannot have an `extern` ABI: remove it"),
            );
            complete = false;
        }
        if let Some(v) = &sig.variadic {
            cx.error_spanned_by(v, format!("`{attr}` fns cannot be variadic"));
            complete = false;
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                format!(
                    "`{attr}` fns cannot be generic: the runtime (de)serializes one concrete input and output type by name; replace the type parameters with concrete types"
                ),
            );
            complete = false;
        }

        let mut params = Vec::new();
        let mut has_receiver = false;
        let mut context_seen = false;
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(r) => {
                    cx.error_spanned_by(
                        r,
                        format!(
                            "`{attr}` goes on a free fn, not a method: move `{}` out of the `impl` block and pass the data it needs as an input",
                            sig.ident
                        ),
                    );
                    has_receiver = true;
                }
                FnArg::Typed(pt) => match classify(cx, kind, pt) {
                    Some(Class::Context) if context_seen => {
                        cx.error_spanned_by(
                            &pt.ty,
                            format!(
                                "a `{attr}` fn takes at most one `{}`: remove this parameter",
                                kind.context()
                            ),
                        );
                        complete = false;
                    }
                    Some(Class::Context) => {
                        context_seen = true;
                        params.push(Param::Context(pt));
                    }
                    Some(Class::Input) => params.push(Param::Input(pt)),
                    None => complete = false,
                },
            }
        }
        if has_receiver {
            return Parsed::Method;
        }

        let returns = returns(cx, kind, item);
        match (complete, returns) {
            (true, Some((return_type, output, error))) => Parsed::Complete(Function {
                kind,
                item,
                params,
                output,
                return_type,
                error,
            }),
            _ => Parsed::Incomplete,
        }
    }

    /// The input types, in order.
    pub fn inputs(&self) -> impl Iterator<Item = &'a PatType> + '_ {
        self.params.iter().filter_map(|p| match p {
            Param::Input(pt) => Some(*pt),
            Param::Context(_) => None,
        })
    }

    /// The context parameter, if the fn takes one.
    pub fn context(&self) -> Option<&'a PatType> {
        self.params.iter().find_map(|p| match p {
            Param::Context(pt) => Some(*pt),
            Param::Input(_) => None,
        })
    }
}

enum Class {
    Context,
    Input,
}

/// The last path segment of a type, if it is a plain path.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn is_context(ty: &Type, kind: Kind) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == kind.context())
}

fn classify(cx: &Ctxt, kind: Kind, pt: &PatType) -> Option<Class> {
    let attr = kind.attr();
    let ty = &*pt.ty;
    if is_context(ty, kind) {
        return Some(Class::Context);
    }
    if is_context(ty, kind.other()) {
        cx.error_spanned_by(
            ty,
            format!(
                "the context of a `{attr}` fn is `{}`, not `{}`: write `ctx: {}`",
                kind.context(),
                kind.other().context(),
                kind.context()
            ),
        );
        return None;
    }
    if let Type::Reference(r) = ty {
        if is_context(&r.elem, kind) || is_context(&r.elem, kind.other()) {
            cx.error_spanned_by(
                ty,
                format!(
                    "take the context by value: write `ctx: {}` (it is cheap to clone)",
                    kind.context()
                ),
            );
        } else {
            cx.error_spanned_by(
                ty,
                format!(
                    "inputs of a `{attr}` fn are deserialized into values it owns: write `{}` instead of a reference",
                    owned(&r.elem)
                ),
            );
        }
        return None;
    }
    if let Type::ImplTrait(_) = ty {
        cx.error_spanned_by(
            ty,
            format!(
                "`impl Trait` makes the `{attr}` fn generic: write a concrete, serializable type"
            ),
        );
        return None;
    }
    Some(Class::Input)
}

/// The owned counterpart of a borrowed input type, for the message: `str` -> `String`.
fn owned(elem: &Type) -> String {
    match elem {
        Type::Path(p) if p.path.is_ident("str") => "String".into(),
        Type::Path(p) if p.path.is_ident("Path") => "PathBuf".into(),
        Type::Slice(s) => format!("Vec<{}>", crate::expand::type_name(&s.elem)),
        other => crate::expand::type_name(other),
    }
}

/// `(return type, T, E)` of `-> Result<T, E>`.
#[allow(clippy::type_complexity)]
fn returns<'a>(
    cx: &Ctxt,
    kind: Kind,
    item: &'a ItemFn,
) -> Option<(&'a Type, &'a Type, Option<&'a Type>)> {
    let attr = kind.attr();
    let err = kind.error();
    match &item.sig.output {
        ReturnType::Default => {
            cx.error_spanned_by(
                &item.sig.ident,
                format!(
                    "`{attr}` fns return a `Result`: add `-> Result<(), {err}>` (any error that converts into `{err}` works)"
                ),
            );
            None
        }
        ReturnType::Type(_, ty) => {
            if let Some(seg) = last_segment(ty) {
                if seg.ident == "Result" {
                    if let PathArguments::AngleBracketed(args) = &seg.arguments {
                        let mut types = args.args.iter().filter_map(|a| match a {
                            GenericArgument::Type(t) => Some(t),
                            _ => None,
                        });
                        if let Some(ok) = types.next() {
                            return Some((ty, ok, types.next()));
                        }
                    }
                }
            }
            cx.error_spanned_by(
                ty,
                format!(
                    "`{attr}` fns return a `Result`, so that failures can be retried and reported: write `-> Result<{}, {err}>`",
                    crate::expand::type_name(ty)
                ),
            );
            None
        }
    }
}
