//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod iyzico;
pub(crate) mod sandbox;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// JSON instead of text.
    pub(crate) json: bool,
}
