//! The `payauth` command.
//!
//! `payauth demo` will start the loopback sandbox and run every provider
//! flow against it; until the sandbox lands it says so and exits 0.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") | None => {
            println!(
                "payauth demo: not yet — the loopback sandbox (payauth-sandbox) has not landed."
            );
            println!("The provider clients are generated from specs/; see README.md.");
            ExitCode::SUCCESS
        }
        Some("--version" | "-V") => {
            println!("payauth {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("payauth: unknown command {other:?}; try `payauth demo`");
            ExitCode::from(2)
        }
    }
}
