//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod iyzico;
pub(crate) mod login;
pub(crate) mod sandbox;
pub(crate) mod token;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// JSON instead of text.
    pub(crate) json: bool,
}

/// The async runtime every network command runs on: two workers, as the
/// machines payauth targets have.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
