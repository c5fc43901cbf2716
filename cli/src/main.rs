//! The generic `duraflow` binary: every command that needs no workflow code of yours.
//! To replay histories against your own workflows, build a binary of your own that calls
//! [`duraflow_cli::run`] with your registry (see the crate docs).

fn main() -> std::process::ExitCode {
    duraflow_cli::run(duraflow::Registry::new())
}
