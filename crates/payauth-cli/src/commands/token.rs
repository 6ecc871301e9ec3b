//! `payauth token <provider>` and `payauth revoke mypos`: one flow against
//! a provider, its sandbox host, or any base URL (`payauth sandbox`),
//! through a `TokenCache` as an application holds one: with a store
//! (`--store-dir`, a config file's `[store]`, the login store of the
//! authorization-code flow) a token still fresh there is served without a
//! request, and an expired one is refreshed.
//!
//! Credentials come from flags, files or `PAYAUTH_*` environment variables
//! (see [`crate::secrets`]); their values are never printed, not even in
//! `--help`. The token itself is printed only with `--reveal` or
//! `--print`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use payauth_core::oauth2::BasicEncoding;
use payauth_core::{
    AccessToken, Environment, ErrorKind, FileStore, FlowSettings, Secret, TokenCache, TokenSource,
    TokenStore,
};
use payauth_iyzico::{PwiSessionSettings, PwiSettings, TerminalLoginSettings, TimestampUnit};
use payauth_mypos::{Mypos, MyposSettings};
use payauth_vakifbank::{
    AuthorizationCodeSettings, B2bCredentialsSettings, Channel, ClientAuthStyle,
    ClientCredentialsSettings, Resource, VakifBankSettings,
};

use super::{Global, Output};
use crate::failure::Failure;
use crate::output::{
    authorization, clean, expires_in_secs, note, print_json, rfc3339_utc, say, token_json,
};
use crate::secrets::{
    IyzicoClientSecret, IyzicoPassword, IyzicoSecretKey, MyposClientSecret, MyposToken,
    PwiSessionToken, VakifBankClientSecret,
};
use crate::vars;

/// `payauth token`'s own flags and its provider subcommand.
#[derive(Debug, Args)]
#[command(subcommand_required = false)]
pub(crate) struct TokenArgs {
    /// Also print the token itself: `access_token` and `authorization`
    /// in `--json`, an `Authorization:` line in text.
    #[arg(long, global = true)]
    reveal: bool,
    /// Print the access token alone on stdout and nothing else there (as
    /// `gcloud auth print-access-token`), for `TOKEN=$(payauth token … --print)`.
    #[arg(long, global = true)]
    print: bool,
    /// Take provider, flow, credentials and `[store]` from this TOML file
    /// (see `payauth config schema`) instead of a provider subcommand
    /// [env: `PAYAUTH_CONFIG`, read when no subcommand is given].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep tokens in this directory (one 0600 file per flow) and serve
    /// them from there across runs until they near expiry. The
    /// authorization-code flow reads `payauth login`'s store by default
    /// [env: `PAYAUTH_STORE_DIR`].
    #[arg(long, global = true, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<TokenCommand>,
}

/// What to print of a token.
#[derive(Debug, Clone, Copy)]
struct Show {
    reveal: bool,
    print: bool,
}

/// What `--allow-insecure-http` is for, named where plain http is refused.
const INSECURE_HINT: &str = "pass --allow-insecure-http to send credentials over plain http:// anyway (never to production)";

/// Where requests go: the one environment rule of every provider.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// `sandbox` (the provider's sandbox host, the default), `production`,
    /// or a base URL (e.g. the URL `payauth sandbox` prints).
    #[arg(long, env = vars::ENVIRONMENT, default_value = "sandbox", value_parser = super::EnvironmentParser)]
    environment: Environment,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[arg(long)]
    allow_insecure_http: bool,
}

impl Target {
    /// The environment, a plain-http base URL refused here (by the
    /// provider crates' own rule) with a hint that names this command's
    /// override.
    fn checked(&self) -> Result<Environment, Failure> {
        if let Environment::Custom(url) = &self.environment {
            self.check(url)?;
        }
        Ok(self.environment.clone())
    }

    fn check(&self, url: &str) -> Result<(), Failure> {
        payauth_core::http::check_base_url(url, self.allow_insecure_http)
            .map(drop)
            .map_err(|e| Failure::from(e).hint(INSECURE_HINT))
    }
}

#[derive(Debug, Args)]
pub(crate) struct MyposArgs {
    #[command(flatten)]
    target: Target,
    /// The client id.
    #[arg(long, env = vars::MYPOS_CLIENT_ID)]
    client_id: String,
    #[command(flatten)]
    client_secret: MyposClientSecret,
    /// Scopes, comma separated (`webhooks` for the Webhook API).
    #[arg(long, value_delimiter = ',')]
    scope: Vec<String>,
    /// Where revocations go (the docs name two hosts); default the token host.
    #[arg(long, env = vars::MYPOS_REVOKE_BASE_URL)]
    revoke_base_url: Option<String>,
    /// HTTP Basic encoding: `plain` (myPOS's docs and SDK) or `rfc6749`.
    #[arg(long, default_value_t = payauth_mypos::auth::BASIC_ENCODING)]
    basic_encoding: BasicEncoding,
    /// Seconds a token lives when the answer has no `expires_in` (a
    /// guess; default: the provider's, see the README's unverified
    /// assumptions).
    #[arg(long, value_name = "SECS")]
    default_lifetime_secs: Option<u64>,
}

impl MyposArgs {
    fn settings(self) -> Result<MyposSettings, Failure> {
        if let Some(url) = &self.revoke_base_url {
            self.target.check(url)?;
        }
        // The constructor and fields, not a struct literal: a setting a
        // provider crate adds keeps its default here until it gets a flag.
        let mut settings = MyposSettings::new(
            self.client_id,
            self.client_secret.resolve()?,
            self.target.checked()?,
        )
        .scopes(self.scope);
        settings.revoke_base_url = self.revoke_base_url;
        settings.basic_encoding = self.basic_encoding;
        settings.default_lifetime_secs = self.default_lifetime_secs;
        settings.allow_insecure_http = self.target.allow_insecure_http;
        Ok(settings)
    }
}

/// The VakıfBank application, for every VakıfBank command.
#[derive(Debug, Args)]
pub(crate) struct VakifBankArgs {
    #[command(flatten)]
    target: Target,
    /// The API key.
    #[arg(long, env = vars::VAKIFBANK_CLIENT_ID)]
    client_id: String,
    #[command(flatten)]
    client_secret: VakifBankClientSecret,
    /// The API plan when it is not the environment's own (`production` for
    /// `--environment production`, else `sandbox`).
    #[arg(long)]
    resource: Option<ResourceArg>,
    /// Send client credentials as HTTP Basic instead of in the body.
    #[arg(long)]
    basic: bool,
    /// HTTP Basic encoding with `--basic`: `rfc6749` (default) or `plain`.
    #[arg(long, default_value_t = payauth_vakifbank::auth::BASIC_ENCODING)]
    basic_encoding: BasicEncoding,
    /// Where the code exchange sends the client credentials (`body`,
    /// `basic`, or `none`: the request exactly as documented), when not as
    /// the other grants.
    #[arg(long)]
    exchange_client_auth: Option<ClientAuthStyle>,
    /// Also send the API plan as `resource` on every token request (the
    /// docs name it on the authorize page only; unverified).
    #[arg(long)]
    send_resource: bool,
    /// Seconds a token lives when the answer has no `expires_in` (a
    /// guess; default: the provider's, see the README's unverified
    /// assumptions).
    #[arg(long, value_name = "SECS")]
    default_lifetime_secs: Option<u64>,
}

impl VakifBankArgs {
    pub(crate) fn settings(self) -> Result<VakifBankSettings, Failure> {
        let mut settings = VakifBankSettings::new(
            self.client_id,
            self.client_secret.resolve()?,
            self.target.checked()?,
        );
        settings.resource = self.resource.map(|r| match r {
            ResourceArg::Sandbox => Resource::Sandbox,
            ResourceArg::Production => Resource::Production,
        });
        settings.client_auth = if self.basic {
            ClientAuthStyle::Basic
        } else {
            ClientAuthStyle::Body
        };
        settings.basic_encoding = self.basic_encoding;
        settings.exchange_client_auth = self.exchange_client_auth;
        settings.send_resource = self.send_resource;
        settings.default_lifetime_secs = self.default_lifetime_secs;
        settings.allow_insecure_http = self.target.allow_insecure_http;
        Ok(settings)
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ResourceArg {
    Sandbox,
    Production,
}

/// Whose VakıfBank login: shared by `payauth login vakifbank` and the
/// authorization-code flow of `payauth token vakifbank`, so both name
/// the same stored tokens.
#[derive(Debug, Args)]
pub(crate) struct CustomerArgs {
    /// Your label for the customer who logs in (the `customer` of a
    /// config file's `flow = "authorization_code"` source).
    #[arg(long, default_value = "default")]
    customer: String,
    /// Corporate customers' login page instead of retail.
    #[arg(long)]
    corporate: bool,
}

impl CustomerArgs {
    /// The authorization-code settings for these customer flags.
    pub(crate) fn settings(
        &self,
        gateway: VakifBankSettings,
        scopes: Vec<String>,
    ) -> AuthorizationCodeSettings {
        let mut settings =
            AuthorizationCodeSettings::new(gateway, self.customer.clone()).scopes(scopes);
        settings.channel = if self.corporate {
            Channel::Corporate
        } else {
            Channel::Retail
        };
        settings
    }

    /// The `payauth login` command that stores what these flags read.
    fn login_hint(&self, scopes: &[String]) -> String {
        format!(
            "log in first: payauth login vakifbank --customer {}{} --scope {} (same --environment, --client-id and --store-dir)",
            self.customer,
            if self.corporate { " --corporate" } else { "" },
            scopes.join(",")
        )
    }
}

/// A VakıfBank grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VakifBankFlow {
    ClientCredentials,
    B2bCredentials,
    /// A customer's login from `payauth login vakifbank`, refreshed with
    /// its refresh token.
    #[value(alias = "refresh-token")]
    AuthorizationCode,
}

impl VakifBankFlow {
    /// The scopes a flow asks for when `--scope` is not given (the
    /// authorization-code flow's are `payauth login`'s).
    fn default_scopes(self) -> &'static str {
        match self {
            Self::ClientCredentials => "public",
            Self::B2bCredentials | Self::AuthorizationCode => "account",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct VakifBankTokenArgs {
    #[command(flatten)]
    bank: VakifBankArgs,
    /// The grant.
    #[arg(long, value_enum, default_value = "client-credentials")]
    flow: VakifBankFlow,
    /// Scopes, comma separated (default: `public` for client-credentials,
    /// `account` for the others).
    #[arg(long, value_delimiter = ',')]
    scope: Vec<String>,
    /// The consent number (b2b-credentials).
    #[arg(long, env = vars::VAKIFBANK_CONSENT_ID)]
    consent_id: Option<String>,
    /// (authorization-code)
    #[command(flatten)]
    customer: CustomerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TerminalArgs {
    #[command(flatten)]
    target: Target,
    /// The Terminal API client id.
    #[arg(long, env = vars::IYZICO_CLIENT_ID)]
    client_id: String,
    #[command(flatten)]
    client_secret: IyzicoClientSecret,
    /// The terminal user.
    #[arg(long, env = vars::IYZICO_USERNAME)]
    username: String,
    #[command(flatten)]
    password: IyzicoPassword,
    /// Send `request_timestamp` in seconds instead of milliseconds.
    #[arg(long)]
    timestamp_seconds: bool,
    /// HTTP Basic encoding: `plain` (as iyzico's docs write the header) or
    /// `rfc6749`.
    #[arg(long, default_value_t = payauth_iyzico::auth::BASIC_ENCODING)]
    basic_encoding: BasicEncoding,
    /// Seconds a token lives when the answer has no `expires_in` (a
    /// guess; default: the provider's, see the README's unverified
    /// assumptions).
    #[arg(long, value_name = "SECS")]
    default_lifetime_secs: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct PwiArgs {
    #[command(flatten)]
    target: Target,
    /// The merchant API key.
    #[arg(long, env = vars::IYZICO_API_KEY)]
    api_key: String,
    #[command(flatten)]
    secret_key: IyzicoSecretKey,
    #[command(flatten)]
    session_token: PwiSessionToken,
    /// The member's identifier.
    #[arg(long, env = vars::IYZICO_PWI_MEMBER)]
    member: String,
    /// Language of iyzico's messages, `tr` or `en` (unset: not sent; iyzico's
    /// default is `tr` on its Turkish docs page, `en` on its English one).
    #[arg(long)]
    locale: Option<payauth_iyzico::Locale>,
    /// `conversationId` to send; the answer must echo it.
    #[arg(long)]
    conversation_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// myPOS client credentials.
    Mypos(MyposArgs),
    /// VakıfBank client or B2B credentials, or a customer's login.
    Vakifbank(VakifBankTokenArgs),
    /// iyzico Terminal API login.
    IyzicoTerminal(TerminalArgs),
    /// iyzico Pay-with-iyzico access token for a member session.
    IyzicoPwi(PwiArgs),
}

/// `payauth revoke`'s own flags and its provider subcommand.
#[derive(Debug, Args)]
#[command(subcommand_required = false)]
pub(crate) struct RevokeArgs {
    /// Revoke the token stored for the flow this TOML file describes
    /// (its `[store]`; see `payauth config schema`) and remove it from
    /// there, instead of a provider subcommand [env: `PAYAUTH_CONFIG`, read
    /// when no subcommand is given]. Only myPOS tokens can be revoked.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<RevokeCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RevokeCommand {
    /// Revoke a myPOS token (RFC 7009; success also for unknown tokens),
    /// and remove it from the token store.
    Mypos {
        #[command(flatten)]
        provider: MyposArgs,
        #[command(flatten)]
        token: MyposToken,
        /// The store `payauth token --store-dir` keeps this flow's tokens
        /// in: the token revoked is removed from it, and with no token
        /// given, the stored one is the one revoked [env: `PAYAUTH_STORE_DIR`].
        #[arg(long, value_name = "DIR")]
        store_dir: Option<PathBuf>,
    },
}

/// One flow to run: its label, source, store key, and where its tokens
/// are kept.
struct Flow {
    label: &'static str,
    source: Arc<dyn TokenSource>,
    key: String,
    store: Option<PathBuf>,
    /// What to do when the grant is refused.
    on_invalid_grant: Option<String>,
}

impl Flow {
    fn new(
        label: &'static str,
        settings: &impl FlowSettings,
        store: Option<PathBuf>,
    ) -> Result<Self, Failure> {
        let http = payauth_core::http::default_client()?;
        let (source, key) = settings.build_with_key(&http)?;
        Ok(Self {
            label,
            source,
            key,
            store,
            on_invalid_grant: None,
        })
    }
}

/// The command's flow, built from the provider crate's settings, as a
/// config file's would be.
fn flow(command: TokenCommand, store: Option<PathBuf>) -> Result<Flow, Failure> {
    match command {
        TokenCommand::Mypos(args) => {
            Flow::new("mypos client credentials", &args.settings()?, store)
        }
        TokenCommand::Vakifbank(args) => vakifbank(args, store),
        TokenCommand::IyzicoTerminal(args) => {
            let mut settings = TerminalLoginSettings::new(
                args.client_id,
                args.client_secret.resolve()?,
                args.username,
                args.password.resolve()?,
                args.target.checked()?,
            );
            if args.timestamp_seconds {
                settings.timestamp_unit = TimestampUnit::Seconds;
            }
            settings.basic_encoding = args.basic_encoding;
            settings.default_lifetime_secs = args.default_lifetime_secs;
            settings.allow_insecure_http = args.target.allow_insecure_http;
            Flow::new("iyzico terminal login", &settings, store)
        }
        TokenCommand::IyzicoPwi(args) => {
            let mut merchant = PwiSettings::new(
                args.api_key,
                args.secret_key.resolve()?,
                args.target.checked()?,
            );
            merchant.allow_insecure_http = args.target.allow_insecure_http;
            merchant.locale = args.locale;
            let mut settings =
                PwiSessionSettings::new(merchant, args.session_token.resolve()?, args.member);
            settings.conversation_id = args.conversation_id;
            Flow::new("iyzico pay-with-iyzico token", &settings, store)
        }
    }
}

fn vakifbank(args: VakifBankTokenArgs, store: Option<PathBuf>) -> Result<Flow, Failure> {
    let scopes = if args.scope.is_empty() {
        vec![args.flow.default_scopes().to_owned()]
    } else {
        args.scope
    };
    let gateway = args.bank.settings()?;
    match args.flow {
        VakifBankFlow::ClientCredentials => Flow::new(
            "vakifbank client credentials",
            &ClientCredentialsSettings::new(gateway).scopes(scopes),
            store,
        ),
        VakifBankFlow::B2bCredentials => {
            let consent = args.consent_id.ok_or_else(|| {
                Failure::Usage("--flow b2b-credentials needs --consent-id".to_owned())
            })?;
            let settings = B2bCredentialsSettings::new(gateway, consent).scopes(scopes);
            Flow::new("vakifbank b2b credentials", &settings, store)
        }
        VakifBankFlow::AuthorizationCode => {
            let settings = args.customer.settings(gateway, scopes.clone());
            let store = store.unwrap_or_else(default_store_dir);
            let mut flow = Flow::new("vakifbank authorization code", &settings, Some(store))?;
            flow.on_invalid_grant = Some(args.customer.login_hint(&scopes));
            Ok(flow)
        }
    }
}

/// Where `payauth login` keeps tokens unless told otherwise:
/// `$XDG_DATA_HOME/payauth`, else `~/.local/share/payauth`.
pub(crate) fn default_store_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("payauth")
}

/// `payauth token …`.
pub(crate) fn run(args: TokenArgs, global: Global) -> Result<(), Failure> {
    if args.print && global.output.json {
        return Err(Failure::Usage(
            "--print prints the bare token, --json a JSON object: choose one".to_owned(),
        ));
    }
    let show = Show {
        reveal: args.reveal,
        print: args.print,
    };
    let store = args
        .store_dir
        .clone()
        .or_else(|| std::env::var_os(vars::STORE_DIR).map(PathBuf::from));
    match (args.config, args.command) {
        (Some(_), Some(_)) => Err(Failure::Usage(
            "give a provider subcommand or --config, not both".to_owned(),
        )),
        (None, Some(command)) => {
            let flow = flow(command, store)?;
            fetch_and_print(flow, show, global)
        }
        (Some(path), None) if args.store_dir.is_some() => Err(Failure::Usage(format!(
            "{} says where tokens are kept ([store]); --store-dir is for provider subcommands",
            path.display()
        ))),
        (Some(path), None) => from_config(&path, show, global),
        (None, None) => match std::env::var_os(vars::CONFIG) {
            Some(path) => from_config(Path::new(&path), show, global),
            None => Err(Failure::Usage(
                "give a provider (payauth token mypos | vakifbank | iyzico-terminal | iyzico-pwi …) or --config FILE".to_owned(),
            )),
        },
    }
}

fn fetch_and_print(flow: Flow, show: Show, global: Global) -> Result<(), Failure> {
    let Flow {
        label,
        source,
        key,
        store,
        on_invalid_grant,
    } = flow;
    let builder = TokenCache::builder(source);
    let cache = match store {
        Some(dir) => builder.store(Arc::new(FileStore::new(dir)), key),
        None => builder,
    }
    .build();
    progress(label);
    let token = super::run(global.timeout, async {
        let token = cache.token().await.map_err(|error| {
            let grant_refused = error.kind() == ErrorKind::InvalidGrant;
            let failure = Failure::from(error);
            match &on_invalid_grant {
                Some(hint) if grant_refused => failure.hint(hint.clone()),
                _ => failure,
            }
        })?;
        // Before exiting: a refresh token just rotated must reach the store.
        cache.flush().await?;
        Ok(token)
    })
    .map_err(|f| f.context(label))?;
    print_token(label, &token, show, global.output)
}

/// The largest config file read: 1 MiB.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// `payauth token --config FILE`: the source and `[store]` the facade's
/// configuration describes, through its own `TokenCache`.
fn from_config(path: &Path, show: Show, global: Global) -> Result<(), Failure> {
    let label = format!("config {}", path.display());
    let config = load_config(path).map_err(|f| f.context(&label))?;
    progress(&label);
    let token = super::run(global.timeout, async {
        let http = config.http_client()?;
        let cache = config.cache(&http)?;
        let token = cache.token().await?;
        // Before exiting: a refresh token just rotated must reach the store.
        cache.flush().await?;
        Ok(token)
    })
    .map_err(|f| f.context(&label))?;
    print_token(&label, &token, show, global.output)
}

/// The configuration file at `path` (a small regular file, TOML).
fn load_config(path: &Path) -> Result<payauth::config::Config, Failure> {
    payauth_core::internal::fs::read_regular_file(path, MAX_CONFIG_FILE)
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
        })
        .map_err(|e| {
            payauth_core::Error::new(ErrorKind::Config)
                .with_description(format!("cannot read it: {e}"))
        })
        .and_then(|text| payauth::config::Config::from_toml(&text))
        .map_err(Failure::from)
}

/// A line for a person watching: only when stderr is a terminal, so
/// scripts see nothing there on success.
fn progress(label: &str) {
    tracing::debug!(flow = label, "requesting a token");
    if std::io::stderr().is_terminal() {
        note!("{label}: requesting a token…");
    }
}

/// The JSON Schema of the configuration file, pretty-printed.
pub(crate) fn config_schema() -> String {
    serde_json::to_string_pretty(&payauth::config::Config::json_schema()).unwrap_or_default()
}

fn print_token(flow: &str, token: &AccessToken, show: Show, output: Output) -> Result<(), Failure> {
    if show.print {
        say!("{}", token.secret().expose_secret());
        return Ok(());
    }
    if output.json {
        let mut value = token_json(token, show.reveal)?;
        value["flow"] = flow.into();
        print_json(&value);
        return Ok(());
    }
    say!(
        "{flow}: OK, {} token, expires in {}s (at {})",
        clean(token.token_type()),
        expires_in_secs(token),
        rfc3339_utc(token.expires_at_system())
    );
    if let Some(scope) = token.scope() {
        say!("scope: {}", clean(scope));
    }
    if token.refresh_token().is_some() {
        say!("a refresh token came with it");
    }
    if show.reveal {
        say!("Authorization: {}", authorization(token)?);
    } else {
        say!("(the token itself is shown only with --reveal or --print)");
    }
    Ok(())
}

/// `payauth revoke mypos`: the token given (or, with a store and none
/// given, the one stored for this flow) revoked, then removed from the
/// store if the store still holds it.
pub(crate) fn revoke(args: RevokeArgs, global: Global) -> Result<(), Failure> {
    match (args.config, args.command) {
        (Some(_), Some(_)) => Err(Failure::Usage(
            "give a provider subcommand or --config, not both".to_owned(),
        )),
        (None, Some(command)) => revoke_mypos(command, global),
        (Some(path), None) => revoke_from_config(&path, global),
        (None, None) => match std::env::var_os(vars::CONFIG) {
            Some(path) => revoke_from_config(Path::new(&path), global),
            None => Err(Failure::Usage(
                "give a provider (payauth revoke mypos …) or --config FILE".to_owned(),
            )),
        },
    }
}

fn revoke_mypos(command: RevokeCommand, global: Global) -> Result<(), Failure> {
    let RevokeCommand::Mypos {
        provider,
        token,
        store_dir,
    } = command;
    let store = store_dir
        .or_else(|| std::env::var_os(vars::STORE_DIR).map(PathBuf::from))
        .map(|dir| Arc::new(FileStore::new(dir)) as Arc<dyn TokenStore>);
    let given = match &store {
        Some(_) if !token.is_given() => None,
        _ => Some(token.load()?),
    };
    let settings = provider.settings()?;
    let key = settings.store_key()?;
    let http = payauth_core::http::default_client()?;
    let mypos = Mypos::new(&settings, &http)?;
    let removed = super::run(global.timeout, async {
        revoke_stored(&mypos, store.as_deref(), &key, given, TOKEN_SOURCES).await
    })
    .map_err(|f| f.context("mypos revoke"))?;
    print_revoked(removed, global);
    Ok(())
}

/// `payauth revoke --config FILE`: the token the file's `[store]` holds
/// for its flow, which must be myPOS's.
fn revoke_from_config(path: &Path, global: Global) -> Result<(), Failure> {
    let label = format!("config {}", path.display());
    let config = load_config(path).map_err(|f| f.context(&label))?;
    let removed = super::run(global.timeout, async {
        let http = config.http_client()?;
        let stored = config.stored(&http)?;
        match &stored.provider {
            #[allow(unreachable_patterns)] // only myPOS when the CLI is built with it alone
            payauth::config::Provider::Mypos(mypos) => {
                revoke_stored(
                    mypos,
                    Some(stored.store.as_ref()),
                    &stored.key,
                    None,
                    "nothing to revoke (run `payauth token --config` first, or revoke a given token with `payauth revoke mypos`)",
                )
                .await
            }
            _ => Err(Failure::Usage(
                "only myPOS tokens can be revoked (the file's provider has no revocation endpoint)"
                    .to_owned(),
            )),
        }
    })
    .map_err(|f| f.context(&label))?;
    print_revoked(removed, global);
    Ok(())
}

/// Where `payauth revoke mypos` takes a token given to it.
const TOKEN_SOURCES: &str =
    "give --token-file, or set PAYAUTH_MYPOS_TOKEN_FILE or PAYAUTH_MYPOS_TOKEN";

/// Revokes `given`, else the token `store` holds under `key`, and removes
/// it from the store if it still holds it. Whether it was removed. With
/// neither, a usage error ending in `instead`.
async fn revoke_stored(
    mypos: &Mypos,
    store: Option<&dyn TokenStore>,
    key: &str,
    given: Option<Secret>,
    instead: &str,
) -> Result<bool, Failure> {
    let stored = match store {
        Some(store) => store.load(key).await?,
        None => None,
    };
    let token = match (given, &stored) {
        (Some(token), _) => token,
        (None, Some(stored)) => stored.access_token.as_secret().clone(),
        (None, None) => {
            return Err(Failure::Usage(format!(
                "no token stored for this flow ({key}): {instead}"
            )));
        }
    };
    mypos.revoke(&token).await?;
    match (store, stored) {
        (Some(store), Some(stored)) if stored.is_cleared_by(Some(&token)) => {
            store.clear(key, Some(&token)).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn print_revoked(removed: bool, global: Global) {
    if global.output.json {
        print_json(&serde_json::json!({ "revoked": true, "removed_from_store": removed }));
    } else {
        say!("mypos: token revoked (or already unknown to myPOS)");
        if removed {
            say!("and removed from the store");
        }
    }
}
