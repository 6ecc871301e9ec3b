//! `payauth login vakifbank`: the authorization-code flow from a terminal.
//! Prints the authorize URL, listens on a loopback redirect URI for the
//! bank's redirect, checks it, exchanges the code, and keeps the tokens in
//! the file store (0600) for later runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use payauth_core::{Error, ErrorKind, FileStore, Secret, StoredToken, TokenStore};
use payauth_vakifbank::{Channel, ClientAuthStyle, Resource, VakifBank, VakifBankConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::{Output, runtime};

/// How long to wait for the browser to come back.
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The gateway base URL (default the real gateway).
    #[arg(long, env = "PAYAUTH_BASE_URL")]
    base_url: Option<String>,
    /// The API key.
    #[arg(long, env = "PAYAUTH_VAKIFBANK_CLIENT_ID")]
    client_id: String,
    /// The API secret.
    #[arg(long, env = "PAYAUTH_VAKIFBANK_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
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
    /// The production API plan instead of sandbox.
    #[arg(long)]
    production: bool,
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
    let resource = if args.production {
        Resource::Production
    } else {
        Resource::Sandbox
    };
    let mut config = VakifBankConfig::new(
        args.client_id.clone(),
        Secret::new(args.client_secret),
        resource,
    );
    if let Some(url) = args.base_url {
        config.base_url = url;
    }
    config.client_auth = ClientAuthStyle::Body;
    let bank = VakifBank::new(config, payauth_core::http::default_client()?)?;

    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_description(format!("cannot listen on 127.0.0.1:{}: {e}", args.port))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Config).with_source(e))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let channel = if args.corporate {
        Channel::Corporate
    } else {
        Channel::Retail
    };
    let scopes: Vec<&str> = args.scope.iter().map(String::as_str).collect();
    let pending = bank.authorize_url(channel, &scopes, &redirect_uri, args.pkce)?;

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

    let dir = args.store_dir.unwrap_or_else(default_store_dir);
    let key = format!("vakifbank/{}", args.client_id);
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
