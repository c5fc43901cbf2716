//! Procedural macros of duraflow.
use proc_macro::TokenStream;

/// Placeholder until the macro crate lands.
#[proc_macro_attribute]
pub fn activity(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Placeholder until the macro crate lands.
#[proc_macro_attribute]
pub fn workflow(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
