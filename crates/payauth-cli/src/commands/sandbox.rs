//! `payauth sandbox`: serves the loopback simulators of all four provider
//! APIs until SIGINT or SIGTERM, for trying flows with `--environment
//! <URL>` or curl.
//!
//! It binds first and announces after, so a busy port fails before any
//! banner, and `--port 0` announces the port it got. The announcement
//! names every credential the sandbox accepts (public test values) as the
//! `export` lines that make `payauth token …` work against it, or with
//! `--json` as one JSON object.

use std::io;

use payauth_sandbox::{RunningSandbox, Sandbox};

use super::{Output, Signals};
use crate::failure::Failure;
use crate::output::print_json;
use crate::secrets::{
    IyzicoClientSecret, IyzicoPassword, IyzicoSecretKey, MyposClientSecret, PwiSessionToken,
    VakifBankClientSecret,
};
use crate::vars;

/// `payauth sandbox --port N`.
pub(crate) fn run(port: u16, output: Output) -> Result<(), Failure> {
    super::runtime()?.block_on(async {
        let sandbox = Sandbox::builder()
            .port(port)
            .start()
            .await
            .map_err(|e| bind_failure(port, &e))?;
        // Listening before announcing: a SIGTERM sent as soon as the
        // banner is read stops the sandbox cleanly.
        let mut signals = Signals::install()?;
        announce(&sandbox, output);
        let signal = signals.recv().await;
        tracing::debug!(?signal, "stopping the sandbox");
        sandbox.shutdown().await;
        eprintln!("payauth sandbox: stopped");
        Ok(())
    })
}

fn bind_failure(port: u16, error: &io::Error) -> Failure {
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
/// `payauth token` reads it from, and its value.
struct Credential {
    provider: &'static str,
    field: &'static str,
    var: &'static str,
    value: String,
}

fn credentials(sandbox: &RunningSandbox) -> Vec<Credential> {
    let c = sandbox.credentials();
    let session = c.pwi_sessions.first();
    let row = |provider, field, var, value: &str| Credential {
        provider,
        field,
        var,
        value: value.to_owned(),
    };
    vec![
        row(
            "iyzico_terminal",
            "client_id",
            vars::IYZICO_CLIENT_ID,
            &c.iyzico_client_id,
        ),
        row(
            "iyzico_terminal",
            "client_secret",
            IyzicoClientSecret::ENV,
            c.iyzico_client_secret.expose_secret(),
        ),
        row(
            "iyzico_terminal",
            "username",
            vars::IYZICO_USERNAME,
            &c.iyzico_username,
        ),
        row(
            "iyzico_terminal",
            "password",
            IyzicoPassword::ENV,
            c.iyzico_password.expose_secret(),
        ),
        row(
            "iyzico_pwi",
            "api_key",
            vars::IYZICO_API_KEY,
            &c.iyzico_api_key,
        ),
        row(
            "iyzico_pwi",
            "secret_key",
            IyzicoSecretKey::ENV,
            c.iyzico_secret_key.expose_secret(),
        ),
        row(
            "iyzico_pwi",
            "session_token",
            PwiSessionToken::ENV,
            session.map_or("", |s| &s.session_token),
        ),
        row(
            "iyzico_pwi",
            "member",
            vars::IYZICO_PWI_MEMBER,
            session.map_or("", |s| &s.member_identifier),
        ),
        row(
            "vakifbank",
            "client_id",
            vars::VAKIFBANK_CLIENT_ID,
            &c.vakifbank_client_id,
        ),
        row(
            "vakifbank",
            "client_secret",
            VakifBankClientSecret::ENV,
            c.vakifbank_client_secret.expose_secret(),
        ),
        row(
            "vakifbank",
            "consent_id",
            vars::VAKIFBANK_CONSENT_ID,
            &c.vakifbank_consent_id,
        ),
        row(
            "mypos",
            "client_id",
            vars::MYPOS_CLIENT_ID,
            &c.mypos_client_id,
        ),
        row(
            "mypos",
            "client_secret",
            MyposClientSecret::ENV,
            c.mypos_client_secret.expose_secret(),
        ),
    ]
}

/// The banner, or with `--json` one line: `url`, `port`, `credentials`
/// by provider and field, `env` (the same values by variable name), and
/// the VakıfBank scopes the sandbox knows.
fn announce(sandbox: &RunningSandbox, output: Output) {
    let url = sandbox.base_url();
    let credentials = credentials(sandbox);
    let scopes = &sandbox.credentials().vakifbank_scopes;
    if output.json {
        let mut value = serde_json::json!({
            "url": url,
            "port": sandbox.addr().port(),
            "credentials": {},
            "env": { vars::ENVIRONMENT: url },
        });
        for c in &credentials {
            value["credentials"][c.provider][c.field] = c.value.as_str().into();
            value["env"][c.var] = c.value.as_str().into();
        }
        value["credentials"]["vakifbank"]["scopes"] = scopes.clone().into();
        print_json(&value);
        return;
    }
    println!("payauth sandbox serving on {url} (Ctrl-C or SIGTERM stops it)");
    println!("Its credentials are public test values, accepted by this sandbox only.");
    println!("To point `payauth token` at it, paste into a shell:");
    println!("  export {}={}", vars::ENVIRONMENT, shell_word(&url));
    for c in &credentials {
        println!("  export {}={}", c.var, shell_word(&c.value));
    }
    println!(
        "then: payauth token mypos | vakifbank [--flow b2b-credentials] | iyzico-terminal | iyzico-pwi"
    );
    println!("VakıfBank scopes known here: {}", scopes.join(", "));
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
