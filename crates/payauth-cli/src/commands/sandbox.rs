//! `payauth sandbox`: serves the loopback simulators of all four provider
//! APIs until SIGINT or SIGTERM, for trying flows with `--environment
//! <URL>` or curl.
//!
//! It binds first and announces after, so a busy port fails before any
//! banner, and `--port 0` announces the port it got. The announcement
//! names every credential the sandbox accepts (public test values) as the
//! `export` lines that make `payauth token …` work against it, or with
//! `--json` as one JSON object.
//!
//! With `--tls-cert` and `--tls-key` it serves HTTPS, and with
//! `--client-ca` it also requires a client certificate that CA signed
//! (mutual TLS, as bank gateways do): `payauth token --config` with an
//! `[http] identity` then gets tokens from it, and a client without one is
//! refused in the handshake.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use payauth_sandbox::{Behaviour, RunningSandbox, Sandbox, SandboxBuilder, SandboxCredentials};

use super::{Output, Signals};
use crate::failure::Failure;
use crate::output::{note, print_json, say};
use crate::secrets::{
    IyzicoClientSecret, IyzicoPassword, IyzicoSecretKey, MyposClientSecret, PwiSessionToken,
    VakifBankClientSecret,
};
use crate::vars;

/// `payauth sandbox`'s TLS flags.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM: the server's
    /// certificate first). It must name `127.0.0.1` (the URL announced) or
    /// `localhost` (use `https://localhost:PORT`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate signed by a CA in this PEM file
    /// (mutual TLS); a client without one fails the TLS handshake.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The builder with the TLS the flags ask for.
    fn apply(&self, builder: SandboxBuilder) -> Result<SandboxBuilder, Failure> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(builder);
        };
        let mut builder = builder.tls(read(cert, "--tls-cert")?, read(key, "--tls-key")?);
        if let Some(ca) = &self.client_ca {
            builder = builder.client_ca(read(ca, "--client-ca")?);
        }
        Ok(builder)
    }
}

/// The PEM file a flag names (a small regular file), or a Config failure
/// naming the flag and the file, never its content.
fn read(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    payauth_core::internal::fs::read_regular_file(path, payauth_core::MAX_SECRET_FILE).map_err(
        |e| {
            Failure::from(
                payauth_core::Error::new(payauth_core::ErrorKind::Config)
                    .with_description(format!("{flag}: cannot read {}: {e}", path.display())),
            )
        },
    )
}

/// `payauth sandbox --port N [--code-lifetime-secs S] [--tls-cert F
/// --tls-key F [--client-ca F]]`.
pub(crate) fn run(
    port: u16,
    code_lifetime_secs: Option<u64>,
    tls: &TlsArgs,
    output: Output,
) -> Result<(), Failure> {
    let mut behaviour = Behaviour::default();
    if let Some(secs) = code_lifetime_secs {
        behaviour.lifetimes.auth_code = Duration::from_secs(secs);
    }
    let builder = tls.apply(Sandbox::builder().port(port).behaviour(behaviour))?;
    super::runtime()?.block_on(async {
        let sandbox = builder.start().await.map_err(|e| start_failure(port, &e))?;
        // Listening before announcing: a SIGTERM sent as soon as the
        // banner is read stops the sandbox cleanly.
        let mut signals = Signals::install()?;
        announce(&sandbox, tls.client_ca.is_some(), output);
        let signal = signals.recv().await;
        tracing::debug!(?signal, "stopping the sandbox");
        sandbox.shutdown().await;
        note!("payauth sandbox: stopped");
        Ok(())
    })
}

fn start_failure(port: u16, error: &io::Error) -> Failure {
    if error.kind() == io::ErrorKind::InvalidInput {
        // The TLS settings (the message names which, never the key).
        return Failure::from(
            payauth_core::Error::new(payauth_core::ErrorKind::Config)
                .with_description(error.to_string()),
        )
        .context("payauth sandbox")
        .hint("--tls-cert and --client-ca take PEM certificates, --tls-key a PEM private key");
    }
    let description = if error.kind() == io::ErrorKind::AddrInUse {
        format!("port {port} on 127.0.0.1 is busy (address in use)")
    } else {
        format!("cannot listen on 127.0.0.1:{port}: {error}")
    };
    Failure::from(
        payauth_core::Error::new(payauth_core::ErrorKind::Config).with_description(description),
    )
    .context("payauth sandbox")
    .hint("choose another port with --port, or --port 0 for any free one")
}

/// One credential the sandbox accepts: provider, field, the variable
/// `payauth token` reads it from, and where its value is.
type Field = (
    &'static str,
    &'static str,
    &'static str,
    fn(&SandboxCredentials) -> &str,
);

const FIELDS: [Field; 13] = [
    (
        "iyzico_terminal",
        "client_id",
        vars::IYZICO_CLIENT_ID,
        |c| &c.iyzico_client_id,
    ),
    (
        "iyzico_terminal",
        "client_secret",
        IyzicoClientSecret::ENV,
        |c| c.iyzico_client_secret.expose_secret(),
    ),
    ("iyzico_terminal", "username", vars::IYZICO_USERNAME, |c| {
        &c.iyzico_username
    }),
    ("iyzico_terminal", "password", IyzicoPassword::ENV, |c| {
        c.iyzico_password.expose_secret()
    }),
    ("iyzico_pwi", "api_key", vars::IYZICO_API_KEY, |c| {
        &c.iyzico_api_key
    }),
    ("iyzico_pwi", "secret_key", IyzicoSecretKey::ENV, |c| {
        c.iyzico_secret_key.expose_secret()
    }),
    ("iyzico_pwi", "session_token", PwiSessionToken::ENV, |c| {
        c.pwi_sessions.first().map_or("", |s| &s.session_token)
    }),
    ("iyzico_pwi", "member", vars::IYZICO_PWI_MEMBER, |c| {
        c.pwi_sessions.first().map_or("", |s| &s.member_identifier)
    }),
    ("vakifbank", "client_id", vars::VAKIFBANK_CLIENT_ID, |c| {
        &c.vakifbank_client_id
    }),
    (
        "vakifbank",
        "client_secret",
        VakifBankClientSecret::ENV,
        |c| c.vakifbank_client_secret.expose_secret(),
    ),
    ("vakifbank", "consent_id", vars::VAKIFBANK_CONSENT_ID, |c| {
        &c.vakifbank_consent_id
    }),
    ("mypos", "client_id", vars::MYPOS_CLIENT_ID, |c| {
        &c.mypos_client_id
    }),
    ("mypos", "client_secret", MyposClientSecret::ENV, |c| {
        c.mypos_client_secret.expose_secret()
    }),
];

/// The banner, or with `--json` one line: `url`, `port`, `credentials`
/// by provider and field, `env` (the same values by variable name), the
/// VakıfBank scopes the sandbox knows, and whether a client certificate
/// is required.
fn announce(sandbox: &RunningSandbox, client_certificate: bool, output: Output) {
    let url = sandbox.base_url();
    let accepted = sandbox.credentials();
    let scopes = &accepted.vakifbank_scopes;
    if output.json {
        let mut value = serde_json::json!({
            "url": url,
            "port": sandbox.addr().port(),
            "credentials": {},
            "env": { vars::ENVIRONMENT: url },
            "client_certificate_required": client_certificate,
        });
        for (provider, field, var, get) in FIELDS {
            value["credentials"][provider][field] = get(accepted).into();
            value["env"][var] = get(accepted).into();
        }
        value["credentials"]["vakifbank"]["scopes"] = scopes.clone().into();
        print_json(&value);
        return;
    }
    say!("payauth sandbox serving on {url} (Ctrl-C or SIGTERM stops it)");
    say!("Its credentials are public test values, accepted by this sandbox only.");
    if client_certificate {
        say!("It requires a client certificate signed by the --client-ca (mutual TLS).");
    }
    say!("To point `payauth token` at it, paste into a shell:");
    say!("  export {}={}", vars::ENVIRONMENT, shell_word(&url));
    for (_, _, var, get) in FIELDS {
        say!("  export {var}={}", shell_word(get(accepted)));
    }
    say!(
        "then: payauth token mypos | vakifbank [--flow b2b-credentials] | iyzico-terminal | iyzico-pwi"
    );
    say!("VakıfBank scopes known here: {}", scopes.join(", "));
}

/// `text` as one shell word: as it is when it holds nothing a shell
/// reads specially, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
