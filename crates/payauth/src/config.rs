//! [`Config`]: one serde-deserialisable description of a token source and
//! its store, for applications that keep settings in a file (TOML with the
//! `toml` feature) or any serde format. [`Config::json_schema`] documents
//! the format for editors and validators.
//!
//! Secrets are never written in the file itself: each is read from an
//! environment variable or a file (a mounted secret), or, for the sandbox
//! only, given as a value ([`SecretConfig`]).
//!
//! Tokens are stored under the flow's key in the one
//! [`StoreKey`](payauth_core::StoreKey) scheme (provider, environment,
//! client id, flow, subject, scopes): two sources share stored tokens only
//! when they are the same flow for the same subject.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use payauth_core::FlowSettings as _;
use payauth_core::{Error, FileStore, MemoryStore, TokenCache, TokenSource, TokenStore};
use schemars::JsonSchema;
use serde::Deserialize;

pub use payauth_core::SecretConfig;

/// A token source and where its tokens are kept.
///
/// Every table refuses keys it does not know (a misspelt `environment`
/// never falls back to a default): [`Config::from_toml`] names the key
/// with its line and column.
///
/// ```toml
/// refresh_margin_secs = 120
///
/// [source]
/// provider = "mypos"
/// environment = "production"          # sandbox (default) | production | a base URL
/// client_id = "my-client"
/// client_secret = { env = "MYPOS_CLIENT_SECRET" }
/// scopes = ["webhooks"]
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

/// The provider and flow, tagged by `provider`: each variant is that flow's
/// settings struct from its provider crate, so the file and code share one
/// path to a token source.
///
/// Each variant is there only with its provider's feature, and a feature
/// turned on anywhere in the dependency tree turns it on for everyone: so
/// the enum is `#[non_exhaustive]`, and a `match` on it needs a `_` arm.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "provider", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourceConfig {
    /// myPOS client credentials.
    #[cfg(feature = "mypos")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mypos")))]
    Mypos(payauth_mypos::MyposSettings),
    /// A VakıfBank grant, tagged by `flow`.
    #[cfg(feature = "vakifbank")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vakifbank")))]
    Vakifbank(VakifBankFlow),
    /// iyzico Terminal API login.
    #[cfg(feature = "iyzico")]
    #[cfg_attr(docsrs, doc(cfg(feature = "iyzico")))]
    IyzicoTerminal(payauth_iyzico::TerminalLoginSettings),
    /// iyzico Pay-with-iyzico access token for one member session.
    #[cfg(feature = "iyzico")]
    #[cfg_attr(docsrs, doc(cfg(feature = "iyzico")))]
    IyzicoPwi(payauth_iyzico::PwiSessionSettings),
}

/// A VakıfBank grant, tagged by `flow`.
#[cfg(feature = "vakifbank")]
#[cfg_attr(docsrs, doc(cfg(feature = "vakifbank")))]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub enum VakifBankFlow {
    /// `authorization_code`: a customer's login, kept fresh with its
    /// refresh token (log in first with `payauth login vakifbank`, which
    /// stores the tokens under the same key).
    AuthorizationCode(payauth_vakifbank::AuthorizationCodeSettings),
    /// `client_credentials`.
    ClientCredentials(payauth_vakifbank::ClientCredentialsSettings),
    /// `b2b_credentials`.
    B2bCredentials(payauth_vakifbank::B2bCredentialsSettings),
}

impl SourceConfig {
    /// The configured token source and its store key (the
    /// [`StoreKey`](payauth_core::StoreKey) scheme).
    ///
    /// # Errors
    /// As the flow's [`FlowSettings::build`](payauth_core::FlowSettings::build).
    pub fn build(
        &self,
        http: &payauth_core::http::HttpClient,
    ) -> Result<(Arc<dyn TokenSource>, String), Error> {
        let (source, key, _) = self.open(http)?;
        Ok((source, key))
    }

    /// The configured token source, its store key, and the provider handle
    /// over the same source (the one a cache over it uses).
    ///
    /// # Errors
    /// As the flow's [`FlowSettings::build`](payauth_core::FlowSettings::build).
    pub fn open(
        &self,
        http: &payauth_core::http::HttpClient,
    ) -> Result<(Arc<dyn TokenSource>, String, Provider), Error> {
        match self {
            #[cfg(feature = "mypos")]
            Self::Mypos(settings) => {
                let mypos = Arc::new(settings.build(http)?);
                Ok((mypos.clone(), settings.store_key()?, Provider::Mypos(mypos)))
            }
            #[cfg(feature = "vakifbank")]
            Self::Vakifbank(flow) => flow.open(http),
            #[cfg(feature = "iyzico")]
            Self::IyzicoTerminal(settings) => {
                let login = Arc::new(settings.build(http)?);
                let key = settings.store_key()?;
                Ok((login.clone(), key, Provider::IyzicoTerminal(login)))
            }
            #[cfg(feature = "iyzico")]
            Self::IyzicoPwi(settings) => {
                let session = Arc::new(settings.build(http)?);
                let key = settings.store_key()?;
                Ok((session.clone(), key, Provider::IyzicoPwi(session)))
            }
        }
    }
}

#[cfg(feature = "vakifbank")]
impl VakifBankFlow {
    fn open(
        &self,
        http: &payauth_core::http::HttpClient,
    ) -> Result<(Arc<dyn TokenSource>, String, Provider), Error> {
        fn opened<S: payauth_core::FlowSettings>(
            settings: &S,
            http: &payauth_core::http::HttpClient,
            bank: impl Fn(&S::Source) -> payauth_vakifbank::VakifBank,
        ) -> Result<(Arc<dyn TokenSource>, String, Provider), Error> {
            let source = settings.build(http)?;
            let handle = Provider::Vakifbank(Arc::new(bank(&source)));
            Ok((Arc::new(source), settings.store_key()?, handle))
        }
        match self {
            Self::AuthorizationCode(settings) => opened(settings, http, |s| s.bank().clone()),
            Self::ClientCredentials(settings) => opened(settings, http, |s| s.bank().clone()),
            Self::B2bCredentials(settings) => opened(settings, http, |s| s.bank().clone()),
        }
    }
}

/// The provider's own handle, built from the same settings as the cache:
/// for what a provider does beyond the token (myPOS revocation, the
/// VakıfBank authorize URL and code exchange, an iyzico Terminal login by
/// hand, the Pay-with-iyzico scheme for later calls).
///
/// ```no_run
/// # #[cfg(feature = "mypos")]
/// # async fn run(config: payauth::config::Config) -> Result<(), payauth::core::Error> {
/// let opened = config.open(&payauth::core::http::default_client()?)?;
/// if let payauth::config::Provider::Mypos(mypos) = &opened.provider {
///     mypos.revoke_cached(&opened.cache).await?; // revoke and drop it
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Provider {
    /// myPOS: revocation, resource headers.
    #[cfg(feature = "mypos")]
    Mypos(Arc<payauth_mypos::Mypos>),
    /// The VakıfBank gateway: authorize URL, callback, code exchange.
    #[cfg(feature = "vakifbank")]
    Vakifbank(Arc<payauth_vakifbank::VakifBank>),
    /// The iyzico Terminal API login.
    #[cfg(feature = "iyzico")]
    IyzicoTerminal(Arc<payauth_iyzico::TerminalLogin>),
    /// One Pay-with-iyzico member session.
    #[cfg(feature = "iyzico")]
    IyzicoPwi(Arc<payauth_iyzico::PwiSession>),
}

/// What [`Config::open`] builds: the cache and the provider's handle over
/// the same token source.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The ready cache, carrying its provider's token scheme.
    pub cache: TokenCache,
    /// The provider's own handle.
    pub provider: Provider,
}

/// Where tokens are kept, tagged by `kind`.
///
/// `#[non_exhaustive]`: `Redis` and `Postgres` are there only with the
/// `redis` and `postgres` features, which any crate in the tree may turn
/// on.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
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
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
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
    /// In PostgreSQL, durable and shared by every replica using the same
    /// database, prefix and source: one fetch per expiry fleet-wide, each
    /// write committed (see `payauth-postgres`). The schema is migrated on
    /// first use.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres {
        /// `postgres://user:password@host:port/database`; a secret since
        /// it may hold a password, e.g. `{ env = "DATABASE_URL" }`.
        url: SecretConfig,
        /// Namespace of every row (default `payauth`).
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
    /// [`ErrorKind::Config`](payauth_core::ErrorKind::Config) with TOML's
    /// message and where it points, e.g. ``line 5, column 1: unknown field
    /// `base_ulr`, …`` (the key itself, even inside a tagged table).
    #[cfg(feature = "toml")]
    #[cfg_attr(docsrs, doc(cfg(feature = "toml")))]
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| toml_errors::config_error(text, &e))
    }

    /// The JSON Schema of the configuration format.
    #[must_use]
    pub fn json_schema() -> schemars::Schema {
        schemars::schema_for!(Config)
    }

    /// The configured token source and its store key.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](payauth_core::ErrorKind::Config) for a secret
    /// that cannot be read or a bad setting, as the provider crate reports
    /// it.
    pub fn source(
        &self,
        http: &payauth_core::http::HttpClient,
    ) -> Result<(Arc<dyn TokenSource>, String), Error> {
        self.source.build(http)
    }

    /// A ready [`TokenCache`] over the configured source and store. It
    /// carries the provider's token scheme
    /// ([`TokenCache::scheme`]), so the facade's middleware puts its
    /// tokens on requests the provider's way.
    ///
    /// # Errors
    /// As [`source`](Self::source).
    pub fn cache(&self, http: &payauth_core::http::HttpClient) -> Result<TokenCache, Error> {
        Ok(self.open(http)?.cache)
    }

    /// The cache ([`cache`](Self::cache)) and the provider's handle over
    /// the same source, for operations beyond the token.
    ///
    /// # Errors
    /// As [`source`](Self::source).
    pub fn open(&self, http: &payauth_core::http::HttpClient) -> Result<Opened, Error> {
        let (source, key, provider) = self.source.open(http)?;
        let cache = self.cache_over(source, key)?;
        Ok(Opened { cache, provider })
    }

    fn cache_over(&self, source: Arc<dyn TokenSource>, key: String) -> Result<TokenCache, Error> {
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
            #[cfg(feature = "postgres")]
            StoreConfig::Postgres {
                url,
                prefix,
                encryption_key,
                lease_ttl_ms,
            } => {
                let mut store = payauth_postgres::PostgresStore::open(&url.load()?)?;
                if let Some(prefix) = prefix {
                    store = store.with_prefix(prefix.clone());
                }
                if let Some(key) = encryption_key {
                    store = store
                        .with_encryption(payauth_postgres::EncryptionKey::from_hex(&key.load()?)?);
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

/// TOML errors as configuration errors that say where: a line and column,
/// on the key itself for an unknown key.
#[cfg(feature = "toml")]
mod toml_errors {
    use std::ops::Range;

    use payauth_core::{Error, ErrorKind};
    use toml::de::{DeTable, DeValue};

    pub(super) fn config_error(text: &str, error: &toml::de::Error) -> Error {
        let message = error.message();
        let at = error.span().map(|span| {
            let span = unknown_key(message)
                .and_then(|key| key_span(text, &span, key))
                .unwrap_or(span);
            line_column(text, span.start)
        });
        let description = match at {
            Some((line, column)) => format!("line {line}, column {column}: {message}"),
            None => message.to_owned(),
        };
        Error::new(ErrorKind::Config).with_description(description)
    }

    /// The key serde names in "unknown field `name`, expected …".
    fn unknown_key(message: &str) -> Option<&str> {
        message
            .strip_prefix("unknown field `")?
            .split_once('`')
            .map(|(key, _)| key)
    }

    /// Where `key` is written inside the value `span` points at. A tagged
    /// table (`[source]`, `[store]`) is read whole before its fields, so
    /// TOML can only point at its header; this finds the key below it.
    fn key_span(text: &str, span: &Range<usize>, key: &str) -> Option<Range<usize>> {
        if text.get(span.clone()) == Some(key) {
            return Some(span.clone());
        }
        let document = DeTable::parse(text).ok()?;
        let table = find_value(document.get_ref(), span)?;
        let mut found = Vec::new();
        collect_keys(table, key, &mut found);
        found.into_iter().min_by_key(|s| s.start)
    }

    fn find_value<'t, 'i>(table: &'t DeTable<'i>, span: &Range<usize>) -> Option<&'t DeTable<'i>> {
        table.iter().find_map(|(_, value)| match value.get_ref() {
            DeValue::Table(inner) if value.span() == *span => Some(inner),
            DeValue::Table(inner) => find_value(inner, span),
            _ => None,
        })
    }

    fn collect_keys(table: &DeTable<'_>, key: &str, found: &mut Vec<Range<usize>>) {
        for (name, value) in table {
            if name.get_ref() == key {
                found.push(name.span());
            }
            if let DeValue::Table(inner) = value.get_ref() {
                collect_keys(inner, key, found);
            }
        }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    fn line_column(text: &str, offset: usize) -> (usize, usize) {
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit_once('\n')
            .map_or(before, |(_, last)| last)
            .chars()
            .count()
            + 1;
        (line, column)
    }
}
