//! The facade's configuration: TOML for every provider builds a cache that
//! gets a token from the sandbox; bad files are clear errors; the JSON
//! Schema describes the format.

use payauth::config::Config;
use payauth::core::ErrorKind;
use payauth_sandbox::{Sandbox, defaults};

fn toml_for(provider: &str, base_url: &str, secret_file: &std::path::Path) -> String {
    let file = secret_file.display();
    match provider {
        "mypos" => format!(
            r#"
            [source]
            provider = "mypos"
            base_url = "{base_url}"
            client_id = "{id}"
            client_secret = {{ file = "{file}" }}
            scope = "webhooks"
            "#,
            id = defaults::MYPOS_CLIENT_ID
        ),
        "vakifbank" => format!(
            r#"
            [source]
            provider = "vakifbank"
            flow = "b2b_credentials"
            base_url = "{base_url}"
            client_id = "{id}"
            client_secret = {{ value = "{secret}" }}
            scopes = ["account"]
            consent_id = "{consent}"
            "#,
            id = defaults::VAKIFBANK_CLIENT_ID,
            secret = defaults::VAKIFBANK_CLIENT_SECRET,
            consent = defaults::VAKIFBANK_CONSENT_ID
        ),
        "iyzico-terminal" => format!(
            r#"
            refresh_margin_secs = 30
            [source]
            provider = "iyzico-terminal"
            base_url = "{base_url}"
            client_id = "{id}"
            client_secret = {{ value = "{secret}" }}
            username = "{user}"
            password = {{ value = "{password}" }}
            "#,
            id = defaults::IYZICO_CLIENT_ID,
            secret = defaults::IYZICO_CLIENT_SECRET,
            user = defaults::IYZICO_USERNAME,
            password = defaults::IYZICO_PASSWORD
        ),
        "iyzico-pwi" => format!(
            r#"
            [source]
            provider = "iyzico-pwi"
            base_url = "{base_url}"
            api_key = "{key}"
            secret_key = {{ value = "{secret}" }}
            session_token = {{ value = "{session}" }}
            member_identifier = "{member}"
            "#,
            key = defaults::IYZICO_API_KEY,
            secret = defaults::IYZICO_SECRET_KEY,
            session = defaults::PWI_SESSION_TOKEN,
            member = defaults::PWI_MEMBER_IDENTIFIER
        ),
        other => panic!("no config for {other}"),
    }
}

#[test]
fn a_toml_config_for_each_provider_builds_a_cache_that_gets_a_token() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(Sandbox::builder().start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("mypos-secret");
    std::fs::write(&secret_file, format!("{}\n", defaults::MYPOS_CLIENT_SECRET)).unwrap();
    let http = payauth::core::http::default_client().unwrap();
    for provider in ["mypos", "vakifbank", "iyzico-terminal", "iyzico-pwi"] {
        let config =
            Config::from_toml(&toml_for(provider, &sandbox.base_url(), &secret_file)).unwrap();
        let cache = config.cache(&http).unwrap();
        let token = runtime
            .block_on(cache.token())
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(token.token_type(), "Bearer", "{provider}");
    }
}

#[test]
fn a_file_store_keeps_the_token_on_disk() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(Sandbox::builder().start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, defaults::MYPOS_CLIENT_SECRET).unwrap();
    let store = dir.path().join("tokens");
    let text = format!(
        "{}\n[store]\nkind = \"file\"\ndir = \"{}\"\n",
        toml_for("mypos", &sandbox.base_url(), &secret_file),
        store.display()
    );
    let cache = Config::from_toml(&text)
        .unwrap()
        .cache(&payauth::core::http::default_client().unwrap())
        .unwrap();
    runtime.block_on(cache.token()).unwrap();
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1);
}

#[test]
fn an_unknown_provider_or_field_is_a_config_error_that_says_which() {
    let error = Config::from_toml("[source]\nprovider = \"paypal\"\n").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("paypal"), "{error}");
    let error = Config::from_toml("refresh_margin = 5\n[source]\nprovider = \"mypos\"\nclient_id = \"a\"\nclient_secret = { env = \"X\" }\n").unwrap_err();
    assert!(error.to_string().contains("refresh_margin"), "{error}");
}

#[test]
fn a_secret_that_cannot_be_read_names_its_source_never_a_value() {
    let config = Config::from_toml(
        "[source]\nprovider = \"mypos\"\nclient_id = \"a\"\nclient_secret = { env = \"PAYAUTH_TEST_SURELY_UNSET\" }\n",
    )
    .unwrap();
    let error = config
        .cache(&payauth::core::http::default_client().unwrap())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error.to_string().contains("PAYAUTH_TEST_SURELY_UNSET"),
        "{error}"
    );
}

#[test]
fn the_json_schema_describes_every_provider_and_store_kind() {
    let schema = serde_json::to_string(&Config::json_schema()).unwrap();
    for name in [
        "mypos",
        "vakifbank",
        "iyzico-terminal",
        "iyzico-pwi",
        "b2b_credentials",
        "file",
        "memory",
        "redis",
        "encryption_key",
        "writeOnly",
    ] {
        assert!(schema.contains(name), "{name} missing from the schema");
    }
}

#[tokio::test]
async fn replicas_built_from_one_redis_store_config_share_one_token() {
    let Some(redis) = payauth_testkit::redis::Redis::get() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let text = format!(
        r#"
        [source]
        provider = "mypos"
        base_url = "{base}"
        client_id = "{id}"
        client_secret = {{ value = "{secret}" }}

        [store]
        kind = "redis"
        url = {{ value = "{url}" }}
        prefix = "{prefix}"
        encryption_key = {{ value = "{key}" }}
        lease_ttl_ms = 2000
        "#,
        base = sandbox.base_url(),
        id = defaults::MYPOS_CLIENT_ID,
        secret = defaults::MYPOS_CLIENT_SECRET,
        url = redis.url,
        prefix = redis.prefix,
        key = "ab".repeat(32),
    );
    let config = Config::from_toml(&text).unwrap();
    let http = payauth::core::http::default_client().unwrap();
    let (one, two) = (config.cache(&http).unwrap(), config.cache(&http).unwrap());
    let first = one.token().await.unwrap();
    let second = two.token().await.unwrap();
    assert_eq!(first.secret(), second.secret());
    assert_eq!(sandbox.requests(payauth_sandbox::Endpoint::MyposToken), 1);
    sandbox.shutdown().await;
}

#[test]
fn a_redis_store_with_a_malformed_encryption_key_is_a_config_error() {
    let text = r#"
        [source]
        provider = "mypos"
        client_id = "id"
        client_secret = { value = "s" }
        sandbox = true

        [store]
        kind = "redis"
        url = { value = "redis://127.0.0.1:1/" }
        encryption_key = { value = "SENTINEL-not-hex" }
        "#;
    let config = Config::from_toml(text).unwrap();
    let http = payauth::core::http::default_client().unwrap();
    let error = config.cache(&http).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(!error.to_string().contains("SENTINEL"), "{error}");
}
