//! `payauth login vakifbank`: the authorization-code flow from a terminal.
//! Prints the authorize URL, serves a loopback redirect URI until the
//! bank's redirect for this login arrives ([`callback`]), exchanges the
//! code, and keeps the tokens in the file store (0600) under the key
//! `payauth token vakifbank --flow authorization-code` and a config
//! file's `authorization_code` source read.
//!
//! The save is a compare-and-set against what the store held when the
//! login began (read before the browser opens): if another login or a
//! service's refresh stored a token meanwhile, the newer of the two (by
//! issue time) is kept and the command says which, on stderr and in
//! `--json`; a login is never overwritten silently. The login's token
//! counts as issued after the one it found, whatever this machine's clock
//! says: it replaces it.

mod callback;

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use payauth_core::{
    AccessToken, Error, ErrorKind, FileStore, FlowSettings as _, SaveIf, Secret, StoredToken,
    TokenStore as _,
};
use payauth_vakifbank::VakifBank;

use super::token::{CustomerArgs, VakifBankArgs, default_store_dir};
use super::{Global, parse_timeout, within};
use crate::failure::Failure;
use crate::output::{note, print_json, rfc3339_utc, say, token_json};
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
        // What the store holds now: the save lands only over it, so a
        // login or refresh stored while the browser is open is never
        // overwritten silently.
        let seen = match store.load(&key).await {
            Ok(seen) => Found::Read(seen),
            Err(error) => {
                note!("warning: the token stored for this login cannot be read ({error}); this login will replace it");
                Found::Unreadable
            }
        };
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
        let kept = match keep(&store, &key, &token, seen).await {
            Ok(kept) => kept,
            Err(error) => {
                // Never silently: the bank issued tokens that are now lost.
                return Err(Failure::from(error)
                    .context("keeping the tokens the bank issued")
                    .hint("the bank issued tokens but they could not be kept, so they are lost: fix the token store and log in again"));
            }
        };
        match &kept {
            Kept::Stored { replaced: None } => {}
            Kept::Stored {
                replaced: Some(other),
            } => note!(
                "note: while this login waited, another login or a service's refresh stored a token for this key ({}); it was older than this login's, which replaced it",
                describe(other)
            ),
            Kept::Newer(newer) => note!(
                "warning: while this login waited, another login or a service's refresh stored a newer token for this key ({}); it was kept, and this login's tokens were not stored (the store holds the newer one, which serves the same customer)",
                describe(newer)
            ),
        }

        if global.output.json {
            let mut value = token_json(&token, false)?;
            value["logged_in"] = true.into();
            value["store_dir"] = dir.display().to_string().into();
            value["store_key"] = key.clone().into();
            match &kept {
                Kept::Stored { replaced } => {
                    value["stored"] = true.into();
                    if let Some(other) = replaced {
                        value["replaced"] = described(other);
                    }
                }
                Kept::Newer(newer) => {
                    value["stored"] = false.into();
                    value["store_holds"] = described(newer);
                }
            }
            print_json(&value);
        } else {
            match &kept {
                Kept::Stored { .. } => {
                    say!("logged in: tokens kept in {} under {key}", dir.display());
                }
                Kept::Newer(_) => say!(
                    "logged in, but a newer token stored meanwhile was kept in {} under {key} (see above)",
                    dir.display()
                ),
            }
        }
        Ok(())
    })
    .map_err(|f| f.context("vakifbank login"))
}

/// What became of the login's token.
enum Kept {
    /// Stored, over what the login found or over an older token stored
    /// meanwhile (`replaced`).
    Stored { replaced: Option<StoredToken> },
    /// Not stored: a newer token was stored meanwhile, and stands.
    Newer(StoredToken),
}

/// What the store held when the login began.
enum Found {
    /// This (or nothing).
    Read(Option<StoredToken>),
    /// A record that could not be read: the login replaces it.
    Unreadable,
}

/// How often the save reads the store again when it moved meanwhile.
const SAVE_ATTEMPTS: usize = 3;

/// Saves `token` only over what the login `found` (an unreadable record
/// is replaced), or over an older token stored meanwhile; a newer one
/// stored meanwhile stands.
async fn keep(
    store: &FileStore,
    key: &str,
    token: &AccessToken,
    found: Found,
) -> Result<Kept, Error> {
    let mut record = StoredToken::from_token(token);
    let Found::Read(mut base) = found else {
        store.save(key, &record).await?;
        return Ok(Kept::Stored { replaced: None });
    };
    // The login replaces what it found: it counts as issued after it,
    // whatever this machine's clock says (a service's refresh of the
    // token found does the same), so it is never taken for the older.
    if let Some(found) = &base {
        record.issued_at_unix_ms = record
            .issued_at_unix_ms
            .max(found.issued_at_unix_ms.saturating_add(1));
    }
    let mut replaced = None;
    for _ in 0..SAVE_ATTEMPTS {
        let holds: Vec<&Secret> = base.iter().map(|b| b.access_token.as_secret()).collect();
        let condition = SaveIf::Holds {
            access_tokens: &holds,
            or_nothing: true,
        };
        if store.save_if(key, &record, condition).await? {
            return Ok(Kept::Stored { replaced });
        }
        // Another writer stored a token meanwhile: the newer stands.
        match store.load(key).await? {
            Some(now) if now.issued_at_unix_ms >= record.issued_at_unix_ms => {
                return Ok(Kept::Newer(now));
            }
            now => {
                replaced.clone_from(&now);
                base = now;
            }
        }
    }
    Err(Error::new(ErrorKind::Store)
        .with_description("the stored token kept changing while this login saved its own"))
}

/// A stored token, described without its secrets.
fn describe(stored: &StoredToken) -> String {
    format!(
        "issued {}, expires {}, {}",
        at(stored.issued_at_unix_ms),
        at(stored.expires_at_unix_ms),
        if stored.refresh_token.is_some() {
            "with a refresh token"
        } else {
            "without a refresh token"
        }
    )
}

/// [`describe`] for `--json`.
fn described(stored: &StoredToken) -> serde_json::Value {
    serde_json::json!({
        "issued_at": at(stored.issued_at_unix_ms),
        "expires_at": at(stored.expires_at_unix_ms),
        "has_refresh_token": stored.refresh_token.is_some(),
    })
}

fn at(unix_ms: u64) -> String {
    rfc3339_utc(
        UNIX_EPOCH
            .checked_add(Duration::from_millis(unix_ms))
            .unwrap_or(UNIX_EPOCH),
    )
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
