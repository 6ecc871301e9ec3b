//! What every provider flow's settings share: the [`FlowSettings`] trait
//! (settings -> token source, one `build`), where a secret comes from
//! ([`SecretConfig`]), and the one store-key scheme ([`StoreKey`]).
//!
//! Each flow of each provider crate has one settings struct (serde, JSON
//! Schema, unknown keys refused) implementing [`FlowSettings`]; the
//! facade's config file and the `payauth` command both build sources
//! through it, so there is one path from settings to a token source.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::http::Environment;
use crate::secret::Secret;
use crate::source::TokenSource;

/// One flow's settings: what it needs to build its token source, and the
/// store key its tokens are kept under.
///
/// ```
/// use payauth_core::settings::{FlowSettings, StoreKey};
/// use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenSource};
///
/// struct Local;
/// impl TokenSource for Local {
///     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
///         Box::pin(async { AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), std::time::Duration::from_secs(60)) })
///     }
/// }
///
/// struct LocalSettings { client_id: String }
/// impl FlowSettings for LocalSettings {
///     type Source = Local;
///     fn build(&self, _http: &payauth_core::http::HttpClient) -> Result<Local, Error> { Ok(Local) }
///     fn store_key(&self) -> Result<String, Error> {
///         Ok(StoreKey::new("local", &Default::default(), &self.client_id, "mint").build::<&str>(&[]))
///     }
/// }
///
/// let settings = LocalSettings { client_id: "a".into() };
/// assert_eq!(settings.store_key().unwrap(), "local/sandbox/a/mint/");
/// let (source, key) = settings.build_with_key(&payauth_core::http::default_client().unwrap()).unwrap();
/// assert_eq!(key, "local/sandbox/a/mint/");
/// ```
pub trait FlowSettings {
    /// The token source these settings build.
    type Source: TokenSource + 'static;

    /// The token source, over a shared `http` client (build it once with
    /// [`crate::http::default_client`]). Secrets are read here.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a secret that
    /// cannot be read, a missing credential or a refused base URL.
    fn build(&self, http: &crate::http::HttpClient) -> Result<Self::Source, Error>;

    /// The key this flow's tokens are stored under: [`StoreKey`]'s scheme,
    /// so that no two settings that must not share a token share a key.
    ///
    /// # Errors
    /// When a secret the key digests (iyzico's PWI session token) cannot
    /// be read.
    fn store_key(&self) -> Result<String, Error>;

    /// [`build`](Self::build) and [`store_key`](Self::store_key) together,
    /// the source shared: what a config file or a command holds when it
    /// does not know the flow's type.
    ///
    /// # Errors
    /// As [`build`](Self::build) and [`store_key`](Self::store_key).
    fn build_with_key(
        &self,
        http: &crate::http::HttpClient,
    ) -> Result<(Arc<dyn TokenSource>, String), Error>
    where
        Self: Sized,
    {
        Ok((Arc::new(self.build(http)?), self.store_key()?))
    }
}

/// Refuses settings that leave a credential empty: `[("a client id",
/// id.is_empty()), …]` gives "`flow` needs a client id" for the first
/// empty one. Every flow's constructor checks its credentials so.
///
/// ```
/// use payauth_core::settings::require;
///
/// assert!(require("myPOS", &[("a client id", false)]).is_ok());
/// let error = require("myPOS", &[("a client id", false), ("a client secret", true)]).unwrap_err();
/// assert_eq!(error.kind(), payauth_core::ErrorKind::Config);
/// assert!(error.to_string().contains("myPOS needs a client secret"));
/// ```
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the first empty
/// credential, never a value.
pub fn require(flow: &str, credentials: &[(&str, bool)]) -> Result<(), Error> {
    match credentials.iter().find(|(_, empty)| *empty) {
        Some((name, _)) => {
            Err(Error::new(crate::ErrorKind::Config)
                .with_description(format!("{flow} needs {name}")))
        }
        None => Ok(()),
    }
}

/// The longest lifetime a setting may assume for a token whose provider
/// did not say (`default_lifetime_secs`): a year.
pub const MAX_DEFAULT_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The lifetime to assume when a token response has no `expires_in`: the
/// setting `secs` when given, else the provider's `fallback`. Every
/// provider guesses this value, so every flow makes it a setting.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::settings::default_lifetime;
///
/// let fallback = Duration::from_secs(3600);
/// assert_eq!(default_lifetime(None, fallback).unwrap(), fallback);
/// assert_eq!(default_lifetime(Some(600), fallback).unwrap(), Duration::from_secs(600));
/// assert!(default_lifetime(Some(0), fallback).is_err());
/// ```
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) for zero seconds or
/// more than [`MAX_DEFAULT_LIFETIME`].
pub fn default_lifetime(secs: Option<u64>, fallback: Duration) -> Result<Duration, Error> {
    let Some(secs) = secs else {
        return Ok(fallback);
    };
    let lifetime = Duration::from_secs(secs);
    if secs == 0 || lifetime > MAX_DEFAULT_LIFETIME {
        return Err(
            Error::new(crate::ErrorKind::Config).with_description(format!(
                "default_lifetime_secs = {secs} is not between 1 and {} (a year)",
                MAX_DEFAULT_LIFETIME.as_secs()
            )),
        );
    }
    Ok(lifetime)
}

/// Where a secret comes from, in settings.
///
/// In a settings file: `{ env = "NAME" }`, `{ file = "/run/secrets/name" }`,
/// or, for the sandbox's public test credentials only, `{ value = "…" }`.
/// Code holding a [`Secret`] already converts it with `From`.
///
/// ```
/// use payauth_core::{Secret, settings::SecretConfig};
///
/// let from_env: SecretConfig = serde_json::from_str(r#"{ "env": "MY_SECRET" }"#).unwrap();
/// assert!(from_env.load().unwrap_err().to_string().contains("MY_SECRET"));
/// let given = SecretConfig::from(Secret::new("s3cr3t"));
/// assert_eq!(given.load().unwrap().expose_secret(), "s3cr3t");
/// assert!(!format!("{given:?}").contains("s3cr3t"));
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    serde(untagged, deny_unknown_fields)
)]
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
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable
    /// or file, never the value.
    pub fn load(&self) -> Result<Secret, Error> {
        match self {
            Self::Env { env } => Secret::from_env(env),
            Self::File { file } => Secret::from_file(file),
            Self::Value { value } => Ok(value.clone()),
        }
    }
}

/// One key, `env`, `file` or `value`; any other key is refused by name.
impl<'de> Deserialize<'de> for SecretConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`, not `map`: a tagged enum's buffered content calls the
        // visitor only so, and a misplaced value is refused unquoted.
        deserializer.deserialize_any(SecretConfigVisitor)
    }
}

struct SecretConfigVisitor;

const SECRET_KEYS: &[&str] = &["env", "file", "value"];

impl<'de> serde::de::Visitor<'de> for SecretConfigVisitor {
    type Value = SecretConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a table with one key: `env`, `file` or `value`")
    }

    // A secret written where its table belongs: refused without echoing
    // it (serde's own message would quote the value).
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretConfig, E> {
        Err(E::custom(
            "a secret is a table (`{ env = \"NAME\" }`, `{ file = \"PATH\" }` or `{ value = \"...\" }`), not a string; the string is not shown",
        ))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretConfig, E> {
        self.visit_str("")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretConfig, E> {
        self.visit_str("")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretConfig, E> {
        self.visit_str("")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretConfig, A::Error> {
        use serde::de::Error as _;
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "env" => SecretConfig::Env {
                    env: map.next_value()?,
                },
                "file" => SecretConfig::File {
                    file: map.next_value()?,
                },
                "value" => SecretConfig::Value {
                    value: map.next_value()?,
                },
                other => return Err(A::Error::unknown_field(other, SECRET_KEYS)),
            };
            if found.replace(value).is_some() {
                return Err(A::Error::custom(
                    "a secret comes from one of `env`, `file` or `value`, not several",
                ));
            }
        }
        found.ok_or_else(|| A::Error::custom("a secret needs one of `env`, `file` or `value`"))
    }
}

impl From<Secret> for SecretConfig {
    fn from(value: Secret) -> Self {
        Self::Value { value }
    }
}

/// The one store-key scheme, for every provider and flow:
///
/// `<provider>/<environment>/<client id>/<flow>[/<subject>…]/<scopes>`
///
/// - `environment`: `sandbox`, `production`, or the custom base URL
///   ([`Environment::label`]), so a sandbox login never replaces a
///   production one;
/// - `flow`: the grant (`client_credentials`, `authorization_code`, …), so
///   a client-credentials token is never served to a customer's flow;
/// - `subject`: who the token is for, where there is one (a customer, a
///   consent, a terminal user, a member's session); each flow always
///   writes the same number of subject parts;
/// - `scopes`: split on spaces, sorted and deduplicated, joined by one
///   space (empty when none): order and repeats never matter.
///
/// Each part has `%`, `/` and `+` percent-encoded, so no value can read
/// as two parts and no two different settings share a key (a property
/// test checks it); the environment part may carry a qualifier after a
/// raw `+` ([`with_qualifier`](Self::with_qualifier): VakıfBank's API plan),
/// which no escaped value can forge.
///
/// ```
/// use payauth_core::{Environment, settings::StoreKey};
///
/// let key = StoreKey::new("vakifbank", &Environment::Production, "app/1", "b2b_credentials")
///     .subject("consent-7")
///     .build(&["loan account", "account"]);
/// assert_eq!(key, "vakifbank/production/app%2F1/b2b_credentials/consent-7/account loan");
/// ```
#[derive(Debug, Clone)]
pub struct StoreKey {
    key: String,
}

impl StoreKey {
    /// The key's fixed parts.
    #[must_use]
    pub fn new(provider: &str, environment: &Environment, client_id: &str, flow: &str) -> Self {
        Self::with_environment(provider, &environment.label(), client_id, flow)
    }

    /// As [`new`](Self::new), with the environment part qualified as
    /// `<environment>+<qualifier>`, each escaped (VakıfBank adds its API
    /// plan when it is not the environment's own): a base URL ending in
    /// `+production` never reads as the production plan.
    #[must_use]
    pub fn with_qualifier(
        provider: &str,
        environment: &Environment,
        qualifier: &str,
        client_id: &str,
        flow: &str,
    ) -> Self {
        let part = format!("{}+{}", escape(&environment.label()), escape(qualifier));
        Self::from_parts(provider, &part, client_id, flow)
    }

    fn with_environment(provider: &str, environment: &str, client_id: &str, flow: &str) -> Self {
        Self::from_parts(provider, &escape(environment), client_id, flow)
    }

    /// The fixed parts, the environment part already escaped.
    fn from_parts(provider: &str, environment: &str, client_id: &str, flow: &str) -> Self {
        let mut key = Self {
            key: format!("{}/{environment}", escape(provider)),
        };
        for part in [client_id, flow] {
            key = key.subject(part);
        }
        key
    }

    /// Adds a subject part.
    #[must_use]
    pub fn subject(mut self, part: &str) -> Self {
        self.key.push('/');
        self.key.push_str(&escape(part));
        self
    }

    /// The key, ending with the normalised `scopes`.
    #[must_use]
    pub fn build<S: AsRef<str>>(mut self, scopes: &[S]) -> String {
        let mut scopes: Vec<&str> = scopes
            .iter()
            .flat_map(|s| s.as_ref().split_whitespace())
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        self.key.push('/');
        self.key.push_str(&escape(&scopes.join(" ")));
        self.key
    }
}

/// A key part with `%`, `/` and `+` percent-encoded (`%` first, so the
/// encoding is injective).
fn escape(part: &str) -> String {
    part.replace('%', "%25")
        .replace('/', "%2F")
        .replace('+', "%2B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(client: &str, subject: &str, scopes: &[&str]) -> String {
        StoreKey::new("p", &Environment::Sandbox, client, "f")
            .subject(subject)
            .build(scopes)
    }

    #[test]
    fn an_assumed_lifetime_is_between_a_second_and_a_year() {
        let fallback = Duration::from_secs(7);
        assert_eq!(default_lifetime(None, fallback).unwrap(), fallback);
        assert_eq!(
            default_lifetime(Some(1), fallback).unwrap(),
            Duration::from_secs(1)
        );
        let year = MAX_DEFAULT_LIFETIME.as_secs();
        assert_eq!(
            default_lifetime(Some(year), fallback).unwrap(),
            MAX_DEFAULT_LIFETIME
        );
        for bad in [0, year + 1, u64::MAX] {
            let error = default_lifetime(Some(bad), fallback).unwrap_err();
            assert_eq!(error.kind(), crate::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn require_names_the_first_empty_credential_only() {
        assert!(require("p", &[("a b", false), ("a c", false)]).is_ok());
        let error = require("p", &[("a b", false), ("a c", true), ("a d", true)]).unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::Config);
        assert!(error.to_string().contains("p needs a c"), "{error}");
        assert!(!error.to_string().contains("a d"), "{error}");
    }

    #[test]
    fn a_secret_is_loaded_from_its_value_env_or_file() {
        let given = SecretConfig::from(Secret::new("v"));
        assert_eq!(given.load().unwrap().expose_secret(), "v");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let file = SecretConfig::File { file: path };
        assert_eq!(file.load().unwrap().expose_secret(), "from-file");
        let env = SecretConfig::Env {
            env: "PAYAUTH_TEST_SURELY_UNSET_SETTING".into(),
        };
        assert!(
            env.load()
                .unwrap_err()
                .to_string()
                .contains("PAYAUTH_TEST_SURELY_UNSET_SETTING")
        );
    }

    #[test]
    fn a_secret_table_with_an_unknown_second_or_no_key_is_refused_by_name() {
        let parse = |json: &str| serde_json::from_str::<SecretConfig>(json).map(|_| ());
        let error = parse(r#"{"env": "A", "fiel": "b"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `fiel`"), "{error}");
        assert!(parse(r#"{"env": "A", "file": "b"}"#).is_err());
        assert!(parse("{}").is_err());
        assert!(parse(r#""inline""#).is_err());
        assert!(parse(r#"{"file": "/run/s"}"#).is_ok());
    }

    #[test]
    fn scope_order_repeats_and_spacing_never_change_the_key() {
        let one = key("c", "s", &["b", "a"]);
        assert_eq!(one, key("c", "s", &["a", "b", "a"]));
        assert_eq!(one, key("c", "s", &[" a  b "]));
        assert_eq!(one, "p/sandbox/c/f/s/a b");
        assert_ne!(one, key("c", "s", &["a"]));
    }

    /// A short value from an alphabet rich in the characters keys are
    /// made of, so that different settings often come close.
    fn part() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[a/%+2B ]{0,3}").unwrap()
    }

    /// Settings as far as keys go: provider, environment, qualifier,
    /// client id, flow, one subject, scopes.
    type Parts = (
        String,
        Environment,
        Option<String>,
        String,
        String,
        String,
        Vec<String>,
    );

    fn environment() -> impl proptest::strategy::Strategy<Value = Environment> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Environment::Sandbox),
            Just(Environment::Production),
            part().prop_map(|url| Environment::Custom(format!("https://{url}"))),
        ]
    }

    fn parts() -> impl proptest::strategy::Strategy<Value = Parts> {
        use proptest::prelude::*;
        (
            prop_oneof![Just("p".to_owned()), part()],
            environment(),
            proptest::option::of(prop_oneof![Just("production".to_owned()), part()]),
            part(),
            part(),
            part(),
            proptest::collection::vec(part(), 0..3),
        )
    }

    fn key_of(parts: &Parts) -> String {
        let (provider, environment, qualifier, client, flow, subject, scopes) = parts;
        let key = match qualifier {
            None => StoreKey::new(provider, environment, client, flow),
            Some(q) => StoreKey::with_qualifier(provider, environment, q, client, flow),
        };
        key.subject(subject).build(scopes)
    }

    /// What two settings must agree on to share a key: equal parts, the
    /// environment by its label (a trailing `/` of a URL is no
    /// difference), the scopes as a set of words.
    fn normal(parts: &Parts) -> Parts {
        let (provider, environment, qualifier, client, flow, subject, scopes) = parts;
        let mut words: Vec<&str> = scopes.iter().flat_map(|s| s.split_whitespace()).collect();
        words.sort_unstable();
        words.dedup();
        (
            provider.clone(),
            Environment::Custom(environment.label().into_owned()),
            qualifier.clone(),
            client.clone(),
            flow.clone(),
            subject.clone(),
            words.into_iter().map(str::to_owned).collect(),
        )
    }

    /// Undoes [`escape`], left to right.
    fn unescape(part: &str) -> String {
        let mut out = String::new();
        let mut rest = part;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            let code = &rest[at..at + 3];
            out.push(match code {
                "%25" => '%',
                "%2F" => '/',
                "%2B" => '+',
                other => panic!("not an escape: {other}"),
            });
            rest = &rest[at + 3..];
        }
        out.push_str(rest);
        out
    }

    /// Reads a key back into the settings it names (one subject part).
    fn read_back(key: &str) -> Parts {
        let fields: Vec<&str> = key.split('/').collect();
        assert_eq!(fields.len(), 6, "{key}");
        let environment: Vec<&str> = fields[1].split('+').collect();
        assert!(environment.len() <= 2, "{key}");
        let scopes = unescape(fields[5]);
        (
            unescape(fields[0]),
            Environment::Custom(unescape(environment[0])),
            environment.get(1).map(|q| unescape(q)),
            unescape(fields[2]),
            unescape(fields[3]),
            unescape(fields[4]),
            scopes.split_whitespace().map(str::to_owned).collect(),
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// A key reads back as the settings it was built from, so two
        /// settings that differ never share one.
        #[test]
        fn a_store_key_reads_back_as_its_settings_so_distinct_settings_never_share_one(
            parts in parts(),
        ) {
            proptest::prop_assert_eq!(read_back(&key_of(&parts)), normal(&parts));
        }
    }

    #[test]
    fn a_base_url_ending_in_a_plan_never_reads_as_that_plan() {
        let custom = Environment::Custom("https://bank.example/x+production".into());
        assert_ne!(
            StoreKey::new("vakifbank", &custom, "c", "f").build::<&str>(&[]),
            StoreKey::with_qualifier(
                "vakifbank",
                &Environment::Custom("https://bank.example/x".into()),
                "production",
                "c",
                "f"
            )
            .build::<&str>(&[]),
        );
    }

    #[test]
    fn a_slash_or_percent_in_a_value_cannot_forge_another_key() {
        assert_ne!(key("a/b", "c", &[]), key("a", "b/c", &[]));
        assert_ne!(key("a%2Fb", "c", &[]), key("a/b", "c", &[]));
        assert_eq!(key("a/b", "c", &[]).matches('/').count(), 5);
    }

    #[test]
    fn environments_never_share_a_key() {
        let keys: Vec<String> = [
            Environment::Sandbox,
            Environment::Production,
            Environment::Custom("http://127.0.0.1:1".into()),
            Environment::Custom("http://127.0.0.1:2/".into()),
        ]
        .iter()
        .map(|e| StoreKey::new("p", e, "c", "f").build::<&str>(&[]))
        .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
