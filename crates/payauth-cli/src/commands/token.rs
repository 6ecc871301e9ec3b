//! `payauth token <provider>` and `payauth revoke mypos`: one flow against
//! a provider, its sandbox host, or any base URL (`payauth sandbox`).
//!
//! Credentials come from flags or `PAYAUTH_*` environment variables (prefer
//! the environment: flags show in the process list); their values are never
//! printed, not even in `--help`. The token itself is printed only with
//! `--reveal`.

use std::sync::Arc;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use payauth_core::{AccessToken, Environment, Error, FlowSettings, Secret, TokenSource};
use payauth_iyzico::{PwiSessionSettings, PwiSettings, TerminalLoginSettings, TimestampUnit};
use payauth_mypos::MyposSettings;
use payauth_vakifbank::{
    B2bCredentialsSettings, ClientAuthStyle, ClientCredentialsSettings, Resource, VakifBankSettings,
};

use super::{Output, runtime};

/// Where requests go: the one environment rule of every provider.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// `sandbox` (the provider's sandbox host, the default), `production`,
    /// or a base URL (e.g. the URL `payauth sandbox` prints).
    #[arg(long, env = "PAYAUTH_ENVIRONMENT", default_value = "sandbox")]
    environment: Environment,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[arg(long)]
    allow_insecure_http: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MyposArgs {
    #[command(flatten)]
    target: Target,
    /// The client id.
    #[arg(long, env = "PAYAUTH_MYPOS_CLIENT_ID")]
    client_id: String,
    /// The client secret.
    #[arg(long, env = "PAYAUTH_MYPOS_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Scopes, comma separated (`webhooks` for the Webhook API).
    #[arg(long, value_delimiter = ',')]
    scope: Vec<String>,
    /// Where revocations go (the docs name two hosts); default the token host.
    #[arg(long, env = "PAYAUTH_MYPOS_REVOKE_BASE_URL")]
    revoke_base_url: Option<String>,
}

impl MyposArgs {
    fn settings(self) -> MyposSettings {
        MyposSettings {
            client_id: self.client_id,
            client_secret: Secret::new(self.client_secret).into(),
            environment: self.target.environment,
            scopes: self.scope,
            revoke_base_url: self.revoke_base_url,
            allow_insecure_http: self.target.allow_insecure_http,
        }
    }
}

/// The VakıfBank application, for every VakıfBank command.
#[derive(Debug, Args)]
pub(crate) struct VakifBankArgs {
    #[command(flatten)]
    target: Target,
    /// The API key.
    #[arg(long, env = "PAYAUTH_VAKIFBANK_CLIENT_ID")]
    client_id: String,
    /// The API secret.
    #[arg(long, env = "PAYAUTH_VAKIFBANK_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The API plan when it is not the environment's own (`production` for
    /// `--environment production`, else `sandbox`).
    #[arg(long)]
    resource: Option<ResourceArg>,
    /// Send client credentials as HTTP Basic instead of in the body.
    #[arg(long)]
    basic: bool,
}

impl VakifBankArgs {
    pub(crate) fn settings(self) -> VakifBankSettings {
        VakifBankSettings {
            client_id: self.client_id,
            client_secret: Secret::new(self.client_secret).into(),
            environment: self.target.environment,
            resource: self.resource.map(|r| match r {
                ResourceArg::Sandbox => Resource::Sandbox,
                ResourceArg::Production => Resource::Production,
            }),
            client_auth: if self.basic {
                ClientAuthStyle::Basic
            } else {
                ClientAuthStyle::Body
            },
            allow_insecure_http: self.target.allow_insecure_http,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ResourceArg {
    Sandbox,
    Production,
}

/// A VakıfBank grant that needs no customer.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum VakifBankFlow {
    ClientCredentials,
    B2bCredentials,
}

#[derive(Debug, Args)]
pub(crate) struct VakifBankTokenArgs {
    #[command(flatten)]
    bank: VakifBankArgs,
    /// The grant.
    #[arg(long, value_enum, default_value = "client-credentials")]
    flow: VakifBankFlow,
    /// Scopes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "public")]
    scope: Vec<String>,
    /// The consent number (b2b-credentials).
    #[arg(long, env = "PAYAUTH_VAKIFBANK_CONSENT_ID")]
    consent_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TerminalArgs {
    #[command(flatten)]
    target: Target,
    /// The Terminal API client id.
    #[arg(long, env = "PAYAUTH_IYZICO_CLIENT_ID")]
    client_id: String,
    /// The Terminal API client secret.
    #[arg(long, env = "PAYAUTH_IYZICO_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The terminal user.
    #[arg(long, env = "PAYAUTH_IYZICO_USERNAME")]
    username: String,
    /// The terminal user's password.
    #[arg(long, env = "PAYAUTH_IYZICO_PASSWORD", hide_env_values = true)]
    password: String,
    /// Send `request_timestamp` in seconds instead of milliseconds.
    #[arg(long)]
    timestamp_seconds: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PwiArgs {
    #[command(flatten)]
    target: Target,
    /// The merchant API key.
    #[arg(long, env = "PAYAUTH_IYZICO_API_KEY")]
    api_key: String,
    /// The merchant secret key.
    #[arg(long, env = "PAYAUTH_IYZICO_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// The member's session token.
    #[arg(long, env = "PAYAUTH_IYZICO_PWI_SESSION_TOKEN", hide_env_values = true)]
    session_token: String,
    /// The member's identifier.
    #[arg(long, env = "PAYAUTH_IYZICO_PWI_MEMBER")]
    member: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// myPOS client credentials.
    Mypos(MyposArgs),
    /// VakıfBank client or B2B credentials.
    Vakifbank(VakifBankTokenArgs),
    /// iyzico Terminal API login.
    IyzicoTerminal(TerminalArgs),
    /// iyzico Pay-with-iyzico access token for a member session.
    IyzicoPwi(PwiArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum RevokeCommand {
    /// Revoke a myPOS token (RFC 7009; success also for unknown tokens).
    Mypos {
        #[command(flatten)]
        provider: MyposArgs,
        /// The token to revoke.
        #[arg(long, env = "PAYAUTH_MYPOS_TOKEN", hide_env_values = true)]
        token: String,
    },
}

/// The command's flow: a label and its source, built from the provider
/// crate's settings, as a config file's would be.
fn source(command: TokenCommand) -> Result<(&'static str, Arc<dyn TokenSource>), Error> {
    let http = payauth_core::http::default_client()?;
    let built = match command {
        TokenCommand::Mypos(args) => (
            "mypos client credentials",
            args.settings().build_with_key(&http)?,
        ),
        TokenCommand::Vakifbank(args) => vakifbank(args, &http)?,
        TokenCommand::IyzicoTerminal(args) => {
            let mut settings = TerminalLoginSettings::new(
                args.client_id,
                Secret::new(args.client_secret),
                args.username,
                Secret::new(args.password),
                args.target.environment,
            );
            if args.timestamp_seconds {
                settings.timestamp_unit = TimestampUnit::Seconds;
            }
            settings.allow_insecure_http = args.target.allow_insecure_http;
            ("iyzico terminal login", settings.build_with_key(&http)?)
        }
        TokenCommand::IyzicoPwi(args) => {
            let mut merchant = PwiSettings::new(
                args.api_key,
                Secret::new(args.secret_key),
                args.target.environment,
            );
            merchant.allow_insecure_http = args.target.allow_insecure_http;
            let settings =
                PwiSessionSettings::new(merchant, Secret::new(args.session_token), args.member);
            (
                "iyzico pay-with-iyzico token",
                settings.build_with_key(&http)?,
            )
        }
    };
    let (label, (source, _key)) = built;
    Ok((label, source))
}

type Built = (&'static str, (Arc<dyn TokenSource>, String));

fn vakifbank(
    args: VakifBankTokenArgs,
    http: &payauth_core::http::HttpClient,
) -> Result<Built, Error> {
    let gateway = args.bank.settings();
    Ok(match args.flow {
        VakifBankFlow::ClientCredentials => (
            "vakifbank client credentials",
            ClientCredentialsSettings::new(gateway)
                .scopes(args.scope)
                .build_with_key(http)?,
        ),
        VakifBankFlow::B2bCredentials => {
            let consent = args.consent_id.ok_or_else(|| {
                Error::new(payauth_core::ErrorKind::Config)
                    .with_description("b2b-credentials needs --consent-id")
            })?;
            (
                "vakifbank b2b credentials",
                B2bCredentialsSettings::new(gateway, consent)
                    .scopes(args.scope)
                    .build_with_key(http)?,
            )
        }
    })
}

pub(crate) fn token(command: TokenCommand, reveal: bool, output: Output) -> Result<(), String> {
    let (flow, source) = source(command).map_err(|e| e.to_string())?;
    fetch_and_print(flow, source.as_ref(), reveal, output)
}

/// `payauth token --config FILE`: the source the facade's configuration
/// describes.
pub(crate) fn from_config(
    path: &std::path::Path,
    reveal: bool,
    output: Output,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let config = payauth::config::Config::from_toml(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let http = payauth_core::http::default_client().map_err(|e| e.to_string())?;
    let (source, key) = config.source(&http).map_err(|e| e.to_string())?;
    fetch_and_print(&key, source.as_ref(), reveal, output)
}

/// The JSON Schema of the configuration file, pretty-printed.
pub(crate) fn config_schema() -> String {
    serde_json::to_string_pretty(&payauth::config::Config::json_schema()).unwrap_or_default()
}

fn fetch_and_print(
    flow: &str,
    source: &dyn TokenSource,
    reveal: bool,
    output: Output,
) -> Result<(), String> {
    eprintln!("{flow}: requesting a token…");
    let token = runtime()?
        .block_on(source.fetch(None))
        .map_err(|e| format!("{flow} failed: {e}"))?;
    print_token(flow, &token, reveal, output);
    Ok(())
}

fn print_token(flow: &str, token: &AccessToken, reveal: bool, output: Output) {
    let expires_in = token
        .expires_at_system()
        .duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs());
    let authorization = token.authorization().to_str().unwrap_or_default();
    if output.json {
        let mut value = serde_json::json!({
            "flow": flow,
            "token_type": token.token_type(),
            "expires_in_s": expires_in,
            "scope": token.scope(),
            "has_refresh_token": token.refresh_token().is_some(),
        });
        if reveal {
            value["authorization"] = serde_json::Value::from(authorization);
        }
        println!("{value}");
    } else {
        println!(
            "{flow}: OK, {} token, expires in {expires_in}s",
            token.token_type()
        );
        if let Some(scope) = token.scope() {
            println!("scope: {scope}");
        }
        if token.refresh_token().is_some() {
            println!("a refresh token came with it");
        }
        if reveal {
            println!("Authorization: {authorization}");
        } else {
            println!("(the token itself is shown only with --reveal)");
        }
    }
}

pub(crate) fn revoke(command: RevokeCommand, output: Output) -> Result<(), String> {
    let RevokeCommand::Mypos { provider, token } = command;
    let http = payauth_core::http::default_client().map_err(|e| e.to_string())?;
    let mypos = provider
        .settings()
        .build(&http)
        .map_err(|e| e.to_string())?;
    runtime()?
        .block_on(mypos.revoke(&Secret::new(token)))
        .map_err(|e| format!("mypos revoke failed: {e}"))?;
    if output.json {
        println!(r#"{{"revoked":true}}"#);
    } else {
        println!("mypos: token revoked (or already unknown to myPOS)");
    }
    Ok(())
}
