//! Error collection: every phase reports into one `Ctxt`, and the user sees all mistakes at once.

use quote::ToTokens;
use std::cell::RefCell;
use std::fmt::Display;

/// Collects errors across the phases of one expansion (serde's `Ctxt` pattern).
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt::default()
    }

    /// An error spanning the user's tokens `obj`.
    pub fn error_spanned_by<T: ToTokens, M: Display>(&self, obj: T, msg: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// An error from syn's own parsing.
    pub fn syn_error(&self, err: syn::Error) {
        self.errors.borrow_mut().push(err);
    }

    /// All errors combined into one, or `None` when there were none.
    pub fn into_error(self) -> Option<syn::Error> {
        let mut errors = self.errors.into_inner().into_iter();
        let mut combined = errors.next()?;
        for e in errors {
            combined.combine(e);
        }
        Some(combined)
    }
}
