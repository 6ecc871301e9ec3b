//! [`Config`]: one serde-deserialisable description of a token source and
//! its store, for applications that keep settings in a file (TOML with the
//! `toml` feature) or any serde format. [`Config::json_schema`] documents
//! the format for editors and validators.
//!
//! Secrets are never written in the file itself: each is read from an
//! environment variable or a file (a mounted secret), or, for the sandbox
//! only, given as a value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use payauth_core::{
    Environment, Error, FileStore, MemoryStore, Secret, TokenCache, TokenSource, TokenStore,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// A token source and where its tokens are kept.
///
/// ```toml
/// refresh_margin_secs = 120
///
/// [source]
/// provider = "mypos"
/// client_id = "my-client"
/// client_secret = { env = "MYPOS_CLIENT_SECRET" }
/// scope = "webhooks"
///
/// [store]
/// kind = "file"
/// dir = "/var/lib/myapp/tokens"
/// ```
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The provider flow that fetches tokens.
    pub source: SourceConfig,
    /// Where tokens (and rotated refresh tokens) are kept; memory when absent.
    #[serde(default)]
    pub store: StoreConfig,
    /// Refresh this many seconds before expiry (capped at half a token's
    /// lifetime); 60 when absent.
    #[serde(default = "default_margin")]
    pub refresh_margin_secs: u64,
}

fn default_margin() -> u64 {
    60
}

/// Where a secret comes from.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretConfig {
    /// `{ env = "NAME" }`: an environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// `{ file = "/run/secrets/name" }`: a file, without its trailing newline.
    File {
        /// The file's path.
        file: PathBuf,
    },
    /// `{ value = "…" }`: inline. For the sandbox's public test
    /// credentials only; never commit a real secret.
    Value {
        /// The secret itself.
        value: Secret,
    },
}

impl SecretConfig {
    /// Reads the secret.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the variable or file, never the value.
    pub fn load(&self) -> Result<Secret, Error> {
        match self {
            Self::Env { env } => Secret::from_env(env),
            Self::File { file } => Secret::from_file(file),
            Self::Value { value } => Ok(value.clone()),
        }
    }
}

/// Which host a provider flow talks to.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Any base URL (the payauth sandbox, a proxy); wins over `sandbox`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The provider's own sandbox host instead of production.
    #[serde(default)]
    pub sandbox: bool,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl HostConfig {
    #[allow(dead_code)] // unused when no provider feature is on
    fn environment(&self) -> Environment {
        match (&self.base_url, self.sandbox) {
            (Some(url), _) => Environment::Custom(url.clone()),
            (None, true) => Environment::Sandbox,
            (None, false) => Environment::Production,
        }
    }
}

/// The provider and flow, tagged by `provider`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "provider", rename_all = "kebab-case")]
pub enum SourceConfig {
    /// myPOS client credentials.
    #[cfg(feature = "mypos")]
    Mypos {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretConfig,
        /// `webhooks` for the Webhook API.
        #[serde(default)]
        scope: Option<String>,
        /// Where revocations go; the token host when absent.
        #[serde(default)]
        revoke_base_url: Option<String>,
        /// The host.
        #[serde(flatten)]
        host: HostConfig,
    },
    /// VakıfBank client or B2B credentials.
    #[cfg(feature = "vakifbank")]
    Vakifbank {
        /// `client_credentials` or `b2b_credentials`.
        flow: VakifBankFlow,
        /// The API key.
        client_id: String,
        /// The API secret.
        client_secret: SecretConfig,
        /// Scopes.
        #[serde(default)]
        scopes: Vec<String>,
        /// The consent number (`b2b_credentials`).
        #[serde(default)]
        consent_id: Option<String>,
        /// The production API plan instead of sandbox.
        #[serde(default)]
        production: bool,
        /// HTTP Basic instead of credentials in the body (unverified).
        #[serde(default)]
        basic_auth: bool,
        /// The gateway base URL; the real gateway when absent.
        #[serde(default)]
        base_url: Option<String>,
    },
    /// iyzico Terminal API login.
    #[cfg(feature = "iyzico")]
    IyzicoTerminal {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: SecretConfig,
        /// The terminal user.
        username: String,
        /// The terminal user's password.
        password: SecretConfig,
        /// `request_timestamp` in seconds instead of milliseconds.
        #[serde(default)]
        timestamp_seconds: bool,
        /// The host.
        #[serde(flatten)]
        host: HostConfig,
    },
    /// iyzico Pay-with-iyzico access token for one member session.
    #[cfg(feature = "iyzico")]
    IyzicoPwi {
        /// The merchant API key.
        api_key: String,
        /// The merchant secret key.
        secret_key: SecretConfig,
        /// The member's session token.
        session_token: SecretConfig,
        /// The member's identifier.
        member_identifier: String,
        /// The host.
        #[serde(flatten)]
        host: HostConfig,
    },
}

/// A VakıfBank grant that needs no customer at hand.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VakifBankFlow {
    /// `client_credentials`.
    ClientCredentials,
    /// `b2b_credentials`.
    B2bCredentials,
}

/// Where tokens are kept, tagged by `kind`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// In process memory (the default).
    #[default]
    Memory,
    /// In files, one per key, 0600.
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// In Redis, shared by every replica using the same URL, prefix and
    /// source: one fetch per expiry fleet-wide (see `payauth-redis`).
    #[cfg(feature = "redis")]
    Redis {
        /// `redis://[user:password@]host:port/db`; a secret since it may
        /// hold a password, e.g. `{ env = "REDIS_URL" }`.
        url: SecretConfig,
        /// Namespace of every key (default `payauth`).
        #[serde(default)]
        prefix: Option<String>,
        /// Encrypt tokens at rest with this key, 64 hex digits (off when
        /// absent; every replica needs the same key).
        #[serde(default)]
        encryption_key: Option<SecretConfig>,
        /// How long a crashed fetcher blocks the fleet, in ms (default
        /// 5000; the live holder renews it).
        #[serde(default)]
        lease_ttl_ms: Option<u64>,
    },
}

impl Config {
    /// Reads a TOML configuration.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] with TOML's message (line, column, field).
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text)
            .map_err(|e| Error::new(payauth_core::ErrorKind::Config).with_description(e.message()))
    }

    /// The JSON Schema of the configuration format.
    #[must_use]
    pub fn json_schema() -> schemars::Schema {
        schemars::schema_for!(Config)
    }

    /// The configured token source and a short name for its store key.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a secret that cannot be read or a bad
    /// setting, as the provider crate reports it.
    #[allow(unused_variables)] // `http` is unused when no provider feature is on
    pub fn source(&self, http: &reqwest::Client) -> Result<(Arc<dyn TokenSource>, String), Error> {
        match &self.source {
            #[cfg(feature = "mypos")]
            SourceConfig::Mypos {
                client_id,
                client_secret,
                scope,
                revoke_base_url,
                host,
            } => {
                let mut config = payauth_mypos::MyposConfig::new(
                    client_id.clone(),
                    client_secret.load()?,
                    host.environment(),
                );
                config.scope.clone_from(scope);
                config.revoke_base_url.clone_from(revoke_base_url);
                config.allow_insecure_http = host.allow_insecure_http;
                let source = payauth_mypos::Mypos::new(config, http.clone())?;
                Ok((Arc::new(source), format!("mypos/{client_id}")))
            }
            #[cfg(feature = "vakifbank")]
            SourceConfig::Vakifbank { .. } => vakifbank_source(&self.source, http),
            #[cfg(feature = "iyzico")]
            SourceConfig::IyzicoTerminal { .. } | SourceConfig::IyzicoPwi { .. } => {
                iyzico_source(&self.source, http)
            }
        }
    }

    /// A ready [`TokenCache`] over the configured source and store.
    ///
    /// # Errors
    /// As [`source`](Self::source).
    pub fn cache(&self, http: &reqwest::Client) -> Result<TokenCache, Error> {
        let (source, key) = self.source(http)?;
        let builder = TokenCache::builder(source)
            .refresh_margin(Duration::from_secs(self.refresh_margin_secs));
        let store: Arc<dyn TokenStore> = match &self.store {
            StoreConfig::Memory => Arc::new(MemoryStore::new()),
            StoreConfig::File { dir } => Arc::new(FileStore::new(dir)),
            #[cfg(feature = "redis")]
            StoreConfig::Redis {
                url,
                prefix,
                encryption_key,
                lease_ttl_ms,
            } => {
                let mut store = payauth_redis::RedisStore::open(&url.load()?)?;
                if let Some(prefix) = prefix {
                    store = store.with_prefix(prefix.clone());
                }
                if let Some(key) = encryption_key {
                    store = store
                        .with_encryption(payauth_redis::EncryptionKey::from_hex(&key.load()?)?);
                }
                if let Some(ttl) = lease_ttl_ms {
                    store = store.with_lease_ttl(Duration::from_millis(*ttl));
                }
                return Ok(builder.shared_store(Arc::new(store), key).build());
            }
        };
        Ok(builder.store(store, key).build())
    }
}

#[cfg(feature = "vakifbank")]
// With only the `vakifbank` feature the pattern is the enum's one variant.
#[allow(irrefutable_let_patterns)]
fn vakifbank_source(
    source: &SourceConfig,
    http: &reqwest::Client,
) -> Result<(Arc<dyn TokenSource>, String), Error> {
    use payauth_vakifbank::{ClientAuthStyle, Resource, VakifBank, VakifBankConfig};
    let SourceConfig::Vakifbank {
        flow,
        client_id,
        client_secret,
        scopes,
        consent_id,
        production,
        basic_auth,
        base_url,
    } = source
    else {
        unreachable!("called for VakifBank configurations only")
    };
    let resource = if *production {
        Resource::Production
    } else {
        Resource::Sandbox
    };
    let mut config = VakifBankConfig::new(client_id.clone(), client_secret.load()?, resource);
    if let Some(url) = base_url {
        config.base_url.clone_from(url);
    }
    config.client_auth = if *basic_auth {
        ClientAuthStyle::Basic
    } else {
        ClientAuthStyle::Body
    };
    let bank = VakifBank::new(config, http.clone())?;
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let source: Arc<dyn TokenSource> = match flow {
        VakifBankFlow::ClientCredentials => Arc::new(bank.client_credentials(&scopes)),
        VakifBankFlow::B2bCredentials => {
            let consent = consent_id.clone().ok_or_else(|| {
                Error::new(payauth_core::ErrorKind::Config)
                    .with_description("b2b_credentials needs consent_id")
            })?;
            Arc::new(bank.b2b_credentials(&scopes, consent))
        }
    };
    Ok((source, format!("vakifbank/{client_id}")))
}

#[cfg(feature = "iyzico")]
fn iyzico_source(
    source: &SourceConfig,
    http: &reqwest::Client,
) -> Result<(Arc<dyn TokenSource>, String), Error> {
    use payauth_iyzico::pwi::{Pwi, PwiConfig};
    use payauth_iyzico::terminal_login::{TerminalLogin, TerminalLoginConfig, TimestampUnit};
    match source {
        SourceConfig::IyzicoTerminal {
            client_id,
            client_secret,
            username,
            password,
            timestamp_seconds,
            host,
        } => {
            let mut config = TerminalLoginConfig::new(
                client_id.clone(),
                client_secret.load()?,
                username.clone(),
                password.load()?,
                host.environment(),
            );
            if *timestamp_seconds {
                config.timestamp_unit = TimestampUnit::Seconds;
            }
            config.allow_insecure_http = host.allow_insecure_http;
            let source = TerminalLogin::new(config, http.clone())?;
            Ok((
                Arc::new(source),
                format!("iyzico-terminal/{client_id}/{username}"),
            ))
        }
        SourceConfig::IyzicoPwi {
            api_key,
            secret_key,
            session_token,
            member_identifier,
            host,
        } => {
            let mut config =
                PwiConfig::new(api_key.clone(), secret_key.load()?, host.environment());
            config.allow_insecure_http = host.allow_insecure_http;
            let pwi = Pwi::new(config, http.clone())?;
            let session = pwi.session(session_token.load()?, member_identifier.clone());
            Ok((
                Arc::new(session),
                format!("iyzico-pwi/{api_key}/{member_identifier}"),
            ))
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("called for iyzico configurations only"),
    }
}
