//! Which spec generates which module of which crate.

/// One hand-written OpenAPI spec and where its generated client goes.
pub(crate) struct Spec {
    /// Path of the spec, relative to the workspace root.
    pub(crate) file: &'static str,
    /// The provider crate whose `src/generated.rs` holds the client.
    pub(crate) krate: &'static str,
    /// The module inside `generated.rs` that holds this spec's client.
    pub(crate) module: &'static str,
    /// The hand-written type the generated `Client` carries for its
    /// `ClientHooks` (credentials for the spec's security schemes).
    pub(crate) inner_type: &'static str,
}

/// Every spec, grouped by crate in the order their modules are written.
pub(crate) const SPECS: &[Spec] = &[
    Spec {
        file: "specs/iyzico-terminal-login.yaml",
        krate: "payauth-iyzico",
        module: "terminal_login",
        inner_type: "crate::auth::TerminalCredentials",
    },
    Spec {
        file: "specs/iyzico-pwi.yaml",
        krate: "payauth-iyzico",
        module: "pwi",
        inner_type: "crate::auth::ApiKeys",
    },
    Spec {
        file: "specs/vakifbank.yaml",
        krate: "payauth-vakifbank",
        module: "gateway",
        inner_type: "crate::auth::ClientAuth",
    },
    Spec {
        file: "specs/mypos.yaml",
        krate: "payauth-mypos",
        module: "oauth",
        inner_type: "crate::auth::MyposCredentials",
    },
];

/// The crates that have generated code, each once, in `SPECS` order.
pub(crate) fn crates() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for spec in SPECS {
        if !out.contains(&spec.krate) {
            out.push(spec.krate);
        }
    }
    out
}
