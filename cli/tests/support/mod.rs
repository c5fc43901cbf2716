//! Shared by the CLI's tests.
#![allow(dead_code)]

pub mod seed;
