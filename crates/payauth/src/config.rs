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
    /// The HTTP client token requests go over ([`Config::http_client`]):
    /// a client certificate, a proxy; the defaults when absent.
    #[serde(default)]
    pub http: HttpConfig,
}

/// `[http]`: how token requests leave. Every field is optional.
///
/// ```toml
/// [http]
/// proxy = { env = "PAYAUTH_PROXY" }   # in place of HTTPS_PROXY / ALL_PROXY
/// identity = { certificate_chain = "/etc/myapp/client.pem", key = { file = "/run/secrets/client-key.pem" } }
/// ```
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A proxy URL for every `https://` token request, in place of the
    /// environment's (`http://`, `https://`, `socks5h://` with the
    /// `socks` feature). A secret: it may carry a password.
    pub proxy: Option<SecretConfig>,
    /// A client certificate for gateways that require one (mutual TLS).
    pub identity: Option<IdentityConfig>,
}

/// A client certificate chain (PEM file) and its private key (PEM, a
/// secret).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The PEM file holding the client's certificate, then any
    /// intermediates.
    pub certificate_chain: PathBuf,
    /// The PEM private key.
    pub key: SecretConfig,
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
    #[serde(deserialize_with = "no_keys")]
    #[schemars(with = "NoKeys")]
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

/// A table with no key but its tag: serde lets a unit variant of a
/// tagged enum ignore any other key, `deny_unknown_fields` or not.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

fn no_keys<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    NoKeys::deserialize(deserializer).map(drop)
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

    /// The HTTP client the `[http]` table describes: build it once and pass
    /// it to [`cache`](Self::cache) or [`open`](Self::open).
    ///
    /// # Errors
    /// [`ErrorKind::Config`](payauth_core::ErrorKind::Config) for a
    /// certificate file or secret that cannot be read, or a setting the
    /// client refuses (see [`HttpClientBuilder::build`](payauth_core::http::HttpClientBuilder::build)).
    pub fn http_client(&self) -> Result<payauth_core::http::HttpClient, Error> {
        let mut builder = payauth_core::http::client_builder();
        if let Some(proxy) = &self.http.proxy {
            builder = builder.proxy(proxy.load()?.expose_secret());
        }
        if let Some(identity) = &self.http.identity {
            let chain = std::fs::read(&identity.certificate_chain).map_err(|e| {
                Error::new(payauth_core::ErrorKind::Config).with_description(format!(
                    "cannot read the client certificate chain {}: {}",
                    identity.certificate_chain.display(),
                    e.kind()
                ))
            })?;
            builder = builder.identity(payauth_core::http::ClientIdentity::from_pem(
                chain,
                identity.key.load()?,
            ));
        }
        builder.build()
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
        Ok(match self.store.open()? {
            OpenedStore::Plain(store) => builder.store(store, key),
            #[cfg(any(feature = "redis", feature = "postgres"))]
            OpenedStore::Shared(store) => builder.shared_store(store, key),
        }
        .build())
    }

    /// The provider's handle, the store `[store]` names and the flow's key
    /// in it, without a cache: for acting on the stored token without
    /// fetching one (what `payauth revoke --config` does).
    ///
    /// ```no_run
    /// # #[cfg(feature = "mypos")]
    /// # async fn run(config: payauth::config::Config) -> Result<(), payauth::core::Error> {
    /// let stored = config.stored(&payauth::core::http::default_client()?)?;
    /// if let Some(token) = stored.store.load(&stored.key).await? {
    ///     println!("stored, expires at {} ms", token.expires_at_unix_ms);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`source`](Self::source), and a shared store's settings
    /// (URL, encryption key) that cannot be loaded.
    pub fn stored(&self, http: &payauth_core::http::HttpClient) -> Result<Stored, Error> {
        let (_, key, provider) = self.source.open(http)?;
        Ok(Stored {
            provider,
            store: self.store.open()?.into_store(),
            key,
        })
    }
}

/// What [`Config::stored`] gives: the provider, the store and the key.
#[derive(Clone)]
#[non_exhaustive]
pub struct Stored {
    /// The provider's own handle.
    pub provider: Provider,
    /// The store `[store]` names, opened.
    pub store: Arc<dyn TokenStore>,
    /// The flow's key in it.
    pub key: String,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("provider", &self.provider)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A store [`StoreConfig`] opened: a shared one also serves leases and
/// shared failures to a cache over it.
enum OpenedStore {
    Plain(Arc<dyn TokenStore>),
    #[cfg(any(feature = "redis", feature = "postgres"))]
    Shared(Arc<dyn payauth_core::SharedStore>),
}

impl OpenedStore {
    /// The store, for a reader with no use for leases.
    #[cfg_attr(
        not(any(feature = "redis", feature = "postgres")),
        allow(clippy::infallible_destructuring_match)
    )]
    fn into_store(self) -> Arc<dyn TokenStore> {
        match self {
            Self::Plain(store) => store,
            #[cfg(any(feature = "redis", feature = "postgres"))]
            Self::Shared(store) => store,
        }
    }
}

impl StoreConfig {
    // Only a shared store's settings can fail to load.
    #[cfg_attr(
        not(any(feature = "redis", feature = "postgres")),
        allow(clippy::unnecessary_wraps)
    )]
    fn open(&self) -> Result<OpenedStore, Error> {
        Ok(match self {
            Self::Memory => OpenedStore::Plain(Arc::new(MemoryStore::new())),
            Self::File { dir } => OpenedStore::Plain(Arc::new(FileStore::new(dir))),
            #[cfg(feature = "redis")]
            Self::Redis {
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
                OpenedStore::Shared(Arc::new(store))
            }
            #[cfg(feature = "postgres")]
            Self::Postgres {
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
                OpenedStore::Shared(Arc::new(store))
            }
        })
    }
}

/// TOML errors as configuration errors that say where: a line and column,
/// on the key itself for an unknown key.
#[cfg(feature = "toml")]
mod toml_errors {
    use std::ops::Range;

    use payauth_core::{Error, ErrorKind};
    use toml::de::{DeTable, DeValue};

    /// The configuration error for TOML's `error` on `text`: TOML's
    /// message after the line and column of the key it is about and the
    /// key's dotted path (`source.client_id`), or of the table a missing
    /// key belongs in.
    pub(super) fn config_error(text: &str, error: &toml::de::Error) -> Error {
        let raw = error.message();
        let message = match raw {
            // A date given where a table was expected: serde sees the
            // TOML crate's private table for dates.
            m if unknown_key(m).is_some_and(|k| k.starts_with("$__toml_private")) => {
                "invalid type: date-time, expected a table"
            }
            m => m,
        };
        let description = match error.span() {
            None => message.to_owned(),
            Some(span) => match DeTable::parse(text) {
                // A syntax error: where TOML says.
                Err(_) => at(text, span.start, None, message),
                Ok(document) => {
                    let document = document.get_ref();
                    match locate(text, document, &span, raw) {
                        Some(found) => at(text, found.span.start, Some(&found), message),
                        None => at(text, span.start, None, message),
                    }
                }
            },
        };
        Error::new(ErrorKind::Config).with_description(description)
    }

    fn at(text: &str, offset: usize, found: Option<&Found>, message: &str) -> String {
        let (line, column) = line_column(text, offset);
        match found {
            Some(found) if found.table => {
                format!("line {line}, column {column}: [{}]: {message}", found.path)
            }
            Some(found) => format!("line {line}, column {column}: `{}`: {message}", found.path),
            None => format!("line {line}, column {column}: {message}"),
        }
    }

    /// A key (or, for a missing key, the table it belongs in): its dotted
    /// path and where it is written.
    struct Found {
        path: String,
        span: Range<usize>,
        table: bool,
    }

    /// The key TOML's error at `span` is about. TOML points at a value;
    /// inside a tagged table (`[source]`, `[store]`), which serde reads
    /// whole before its fields, it can only point at the table: then the
    /// key is the one whose removal changes the error.
    fn locate(
        text: &str,
        document: &DeTable<'_>,
        span: &Range<usize>,
        message: &str,
    ) -> Option<Found> {
        if let Some(key) = unknown_key(message)
            && let Some(key_span) = key_span(text, span, key)
        {
            return Some(Found {
                path: path_of(document, &key_span, &mut Vec::new())
                    .unwrap_or_else(|| key.to_owned()),
                span: key_span,
                table: false,
            });
        }
        let mut path = Vec::new();
        let (key, value) = innermost(document, span, &mut path)?;
        let is_table = matches!(value.get_ref(), DeValue::Table(_));
        if !is_table || value.span() != *span {
            return Some(Found {
                path: path.join("."),
                span: key.span(),
                table: false,
            });
        }
        let DeValue::Table(table) = value.get_ref() else {
            return None;
        };
        if message.starts_with("missing field `") {
            return Some(Found {
                path: path.join("."),
                span: value.span(),
                table: true,
            });
        }
        Some(culprit(text, table, message, &mut path).unwrap_or(Found {
            path: path.join("."),
            span: value.span(),
            table: true,
        }))
    }

    type Entry<'t, 'i> = (
        &'t toml::Spanned<toml::de::DeString<'i>>,
        &'t toml::Spanned<DeValue<'i>>,
    );

    /// The innermost key whose value holds `span`, its path pushed on
    /// `path`. (A `[table]`'s own span is its header, not its body: every
    /// table is searched.)
    fn innermost<'t, 'i>(
        table: &'t DeTable<'i>,
        span: &Range<usize>,
        path: &mut Vec<String>,
    ) -> Option<Entry<'t, 'i>> {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            if let DeValue::Table(inner) = value.get_ref()
                && value.span() != *span
                && let Some(found) = innermost(inner, span, path)
            {
                return Some(found);
            }
            let held = value.span();
            if held.start <= span.start && span.end <= held.end {
                return Some((key, value));
            }
            path.pop();
        }
        None
    }

    /// The tags of the tagged tables (`SourceConfig`, `VakifBankFlow`,
    /// `StoreConfig`).
    const TAGS: [&str; 3] = ["provider", "flow", "kind"];

    /// The key of `table` whose removal from `text` changes the error
    /// `message`, descending into an inline table. The first, in the order
    /// written, whose removal mends it or gives another error; else the
    /// first whose removal only makes it missing (a required key read
    /// before its table's other keys would be missing too); a tag, without
    /// which no table reads, last.
    fn culprit(
        text: &str,
        table: &DeTable<'_>,
        message: &str,
        path: &mut Vec<String>,
    ) -> Option<Found> {
        let mut candidates = Vec::new();
        for (key, value) in table {
            let written = key.span().start..value.span().end;
            let after = reparsed_message(&blank(text, &written));
            if after.as_deref() == Some(message) {
                continue;
            }
            let name = key.get_ref().as_ref();
            let only_missing = after.is_some_and(|m| m == format!("missing field `{name}`"));
            let rank = (
                TAGS.contains(&name),
                only_missing,
                !described(message, text, value),
                matches!(value.get_ref(), DeValue::Table(_)),
                key.span().start,
            );
            candidates.push((rank, key, value));
        }
        let (_, key, value) = candidates.into_iter().min_by_key(|(rank, _, _)| *rank)?;
        path.push(key.get_ref().to_string());
        if let DeValue::Table(inner) = value.get_ref()
            && let Some(found) = culprit(text, inner, message, path)
        {
            return Some(found);
        }
        Some(Found {
            path: path.join("."),
            span: key.span(),
            table: false,
        })
    }

    /// Whether serde's `message` describes `value` ("invalid type: map",
    /// "integer `5`", "unknown variant `x`"): of two keys whose removal
    /// only makes them missing, the one it describes is to blame.
    fn described(message: &str, text: &str, value: &toml::Spanned<DeValue<'_>>) -> bool {
        match value.get_ref() {
            DeValue::Table(_) => message.contains("invalid type: map"),
            DeValue::Datetime(_) => {
                message.contains("invalid type: map") || message.contains("$__toml_private")
            }
            DeValue::Array(_) => message.contains("invalid type: sequence"),
            _ => text
                .get(value.span())
                .map(|written| written.trim_matches(['"', '\'']))
                .is_some_and(|written| {
                    message.contains(&format!("`{written}`"))
                        || message.contains(&format!("\"{written}\""))
                }),
        }
    }

    /// `text` with the bytes of `range` but its line ends made spaces, so
    /// every other offset stays where it was.
    fn blank(text: &str, range: &Range<usize>) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for byte in bytes.get_mut(range.clone()).into_iter().flatten() {
            if !matches!(*byte, b'\n' | b'\r') {
                *byte = b' ';
            }
        }
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// The error message reading `text` as a configuration gives, if any.
    fn reparsed_message(text: &str) -> Option<String> {
        toml::from_str::<super::Config>(text)
            .err()
            .map(|e| e.message().to_owned())
    }

    /// The dotted path of the key written at `key_span`.
    fn path_of(
        table: &DeTable<'_>,
        key_span: &Range<usize>,
        path: &mut Vec<String>,
    ) -> Option<String> {
        for (name, value) in table {
            path.push(name.get_ref().to_string());
            if name.span() == *key_span {
                return Some(path.join("."));
            }
            if let DeValue::Table(inner) = value.get_ref()
                && let Some(found) = path_of(inner, key_span, path)
            {
                return Some(found);
            }
            path.pop();
        }
        None
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
