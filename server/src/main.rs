//! The `clarion` binary: see the clarion-server crate docs.

fn main() -> std::process::ExitCode {
    clarion_server::main()
}
