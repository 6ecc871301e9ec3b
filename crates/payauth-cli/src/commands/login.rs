//! `payauth login vakifbank`: the authorization-code flow from a terminal.
//! Prints the authorize URL, listens on a loopback redirect URI for the
//! bank's redirect, checks it, exchanges the code, and keeps the tokens in
//! the file store (0600) for later runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use payauth_core::{Error, ErrorKind, FileStore, FlowSettings, StoredToken, TokenStore};
use payauth_vakifbank::{AuthorizationCodeSettings, Channel, VakifBank};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::token::VakifBankArgs;
use super::{Output, runtime};

/// How long to wait for the browser to come back.
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    bank: VakifBankArgs,
    /// Your label for the customer who logs in: the `customer` of a config
    /// file's `flow = "authorization_code"` source that uses these tokens.
    #[arg(long, default_value = "default")]
    customer: String,
    /// Scopes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "account")]
    scope: Vec<String>,
    /// Corporate customers' login page instead of retail.
    #[arg(long)]
    corporate: bool,
    /// Send PKCE S256 (not in VakıfBank's docs).
    #[arg(long)]
    pkce: bool,
    /// The loopback port for the redirect URI (0: any free port). Register
    /// `http://127.0.0.1:<port>/callback` with the bank.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where tokens are kept.
    #[arg(long, env = "PAYAUTH_STORE_DIR")]
    store_dir: Option<PathBuf>,
}

impl LoginArgs {
    /// The same settings a config file's `authorization_code` source
    /// holds, so both use one store key.
    fn settings(self) -> (AuthorizationCodeSettings, u16, Option<PathBuf>) {
        let mut settings =
            AuthorizationCodeSettings::new(self.bank.settings(), self.customer).scopes(self.scope);
        settings.channel = if self.corporate {
            Channel::Corporate
        } else {
            Channel::Retail
        };
        settings.pkce = self.pkce;
        (settings, self.port, self.store_dir)
    }
}

fn default_store_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("payauth")
}

pub(crate) fn run(args: LoginArgs, output: Output) -> Result<(), String> {
    runtime()?
        .block_on(login(args, output))
        .map_err(|e| format!("vakifbank login failed: {e}"))
}

async fn login(args: LoginArgs, output: Output) -> Result<(), Error> {
    let (settings, port, store_dir) = args.settings();
    let key = settings.store_key()?;
    let bank = VakifBank::new(&settings.gateway, &payauth_core::http::default_client()?)?;

    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        Error::new(ErrorKind::Config)
            .with_description(format!("cannot listen on 127.0.0.1:{port}: {e}"))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Config).with_source(e))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let pending = settings.authorize_url(&bank, &redirect_uri)?;

    println!("Open this URL in your browser and log in:");
    println!("{}", pending.url);
    eprintln!(
        "waiting for the bank's redirect on {redirect_uri} (up to {} s)…",
        WAIT.as_secs()
    );

    let query = tokio::time::timeout(WAIT, redirect_query(&listener))
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout).with_description("no redirect arrived"))??;
    let code = pending.callback(&query)?;
    let token = bank.exchange(&pending, &code).await?;

    let dir = store_dir.unwrap_or_else(default_store_dir);
    let store = Arc::new(FileStore::new(&dir));
    store.save(&key, &StoredToken::from_token(&token)).await?;

    if output.json {
        println!(
            "{}",
            serde_json::json!({
                "logged_in": true,
                "store_dir": dir.display().to_string(),
                "store_key": key,
                "scope": token.scope(),
                "has_refresh_token": token.refresh_token().is_some(),
                "expires_in_s": token.lifetime().as_secs(),
            })
        );
    } else {
        println!("logged in: tokens kept in {} under {key}", dir.display());
    }
    Ok(())
}

/// Accepts connections until one is `GET /callback?…`; answers the browser
/// and returns the query.
async fn redirect_query(listener: &TcpListener) -> Result<String, Error> {
    loop {
        let (mut stream, _) = listener
            .accept()
            .await
            .map_err(|e| Error::new(ErrorKind::Transport).with_source(e))?;
        let mut buffer = vec![0u8; 8192];
        let mut read = 0;
        while read < buffer.len() {
            let n = stream
                .read(&mut buffer[read..])
                .await
                .map_err(|e| Error::new(ErrorKind::Transport).with_source(e))?;
            read += n;
            if n == 0 || buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buffer[..read]);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next());
        let Some(query) = target
            .and_then(|t| t.strip_prefix("/callback"))
            .map(|q| q.trim_start_matches('?').to_owned())
        else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        let body = "payauth: the login reached the terminal. You can close this window.";
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        return Ok(query);
    }
}
