//! `payauth login vakifbank`: the authorization-code flow from a terminal.
//! Prints the authorize URL, serves a loopback redirect URI until the
//! bank's redirect for this login arrives ([`callback`]), exchanges the
//! code, and keeps the tokens in the file store (0600) under the key
//! `payauth token vakifbank --flow authorization-code` and a config
//! file's `authorization_code` source read.

mod callback;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use payauth_core::{Error, ErrorKind, FileStore, FlowSettings as _, StoredToken, TokenStore as _};
use payauth_vakifbank::VakifBank;

use super::token::{CustomerArgs, VakifBankArgs, default_store_dir};
use super::{Global, parse_timeout, within};
use crate::failure::Failure;
use crate::output::{note, print_json, say, token_json};
use crate::vars;

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    bank: VakifBankArgs,
    #[command(flatten)]
    customer: CustomerArgs,
    /// Scopes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "account")]
    scope: Vec<String>,
    /// Send PKCE S256 (not in VakıfBank's docs).
    #[arg(long)]
    pkce: bool,
    /// The loopback port for the redirect URI (0: any free port). Register
    /// `http://127.0.0.1:<port>/callback` with the bank.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where tokens are kept (default `$XDG_DATA_HOME/payauth`, else
    /// `~/.local/share/payauth`).
    #[arg(long, env = vars::STORE_DIR, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    /// How long to wait for the browser to come back (`--timeout` bounds
    /// the code exchange).
    #[arg(long, default_value = "300", value_parser = parse_timeout, value_name = "DURATION")]
    wait: Duration,
}

/// `payauth login vakifbank`.
pub(crate) fn run(args: LoginArgs, global: Global) -> Result<(), Failure> {
    let LoginArgs {
        bank,
        customer,
        scope,
        pkce,
        port,
        store_dir,
        wait,
    } = args;
    let mut settings = customer.settings(bank.settings()?, scope);
    settings.pkce = pkce;
    let key = settings.store_key()?;
    let dir = store_dir.unwrap_or_else(default_store_dir);
    super::run(None, async move {
        // Before the bank issues anything: an unusable store would cost the
        // customer's login after the exchange.
        let store = FileStore::new(&dir);
        store.check_writable().await?;
        let bank = VakifBank::new(&settings.gateway, &payauth_core::http::default_client()?)?;
        let server = callback::CallbackServer::bind(port).await?;
        let pending = settings.authorize_url(&bank, &server.redirect_uri())?;
        announce(pending.url.as_str(), &pending.redirect_uri, wait, global);

        let query = tokio::time::timeout(wait, server.wait(&pending.state))
            .await
            .map_err(|_| {
                Error::new(ErrorKind::Timeout).with_description(format!(
                    "no redirect arrived within {}s (--wait)",
                    wait.as_secs_f64()
                ))
            })?;
        let code = pending.callback(&query)?;
        let token = within(global.timeout, async { Ok(bank.exchange(&pending, &code).await?) })
            .await?;
        if let Err(error) = store.save(&key, &StoredToken::from_token(&token)).await {
            // Never silently: the bank issued tokens that are now lost.
            return Err(Failure::from(error)
                .context("keeping the tokens the bank issued")
                .hint("the bank issued tokens but they could not be kept, so they are lost: fix the token store and log in again"));
        }

        if global.output.json {
            let mut value = token_json(&token, false)?;
            value["logged_in"] = true.into();
            value["store_dir"] = dir.display().to_string().into();
            value["store_key"] = key.clone().into();
            print_json(&value);
        } else {
            say!("logged in: tokens kept in {} under {key}", dir.display());
        }
        Ok(())
    })
    .map_err(|f| f.context("vakifbank login"))
}

/// Where to send the browser: text for a person, one JSON line for a
/// program that opens the URL itself.
fn announce(url: &str, redirect_uri: &str, wait: Duration, global: Global) {
    if global.output.json {
        print_json(&serde_json::json!({
            "authorize_url": url,
            "redirect_uri": redirect_uri,
            "wait_s": wait.as_secs(),
        }));
    } else {
        say!("Open this URL in your browser and log in:");
        say!("{url}");
        note!(
            "waiting for the bank's redirect on {redirect_uri} (up to {} s)…",
            wait.as_secs()
        );
    }
}
