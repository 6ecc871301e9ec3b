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
            environment = "{base_url}"
            client_id = "{id}"
            client_secret = {{ file = "{file}" }}
            scopes = ["webhooks"]
            "#,
            id = defaults::MYPOS_CLIENT_ID
        ),
        "vakifbank" => format!(
            r#"
            [source]
            provider = "vakifbank"
            flow = "b2b_credentials"
            environment = "{base_url}"
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
            environment = "{base_url}"
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
            environment = "{base_url}"
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
        "postgres",
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
        environment = "{base}"
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
        environment = "sandbox"

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

#[tokio::test]
async fn replicas_built_from_one_postgres_store_config_share_one_token() {
    let Some(postgres) = payauth_testkit::postgres::Postgres::get() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let text = format!(
        r#"
        [source]
        provider = "mypos"
        environment = "{base}"
        client_id = "{id}"
        client_secret = {{ value = "{secret}" }}

        [store]
        kind = "postgres"
        url = {{ value = "{url}" }}
        prefix = "{prefix}"
        encryption_key = {{ value = "{key}" }}
        lease_ttl_ms = 2000
        "#,
        base = sandbox.base_url(),
        id = defaults::MYPOS_CLIENT_ID,
        secret = defaults::MYPOS_CLIENT_SECRET,
        url = postgres.url,
        prefix = postgres.prefix,
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
fn a_postgres_store_with_a_malformed_url_or_key_is_a_config_error_that_quotes_neither() {
    for (url, key) in [
        ("postgres://u:SENTINEL@h:notaport/db", "ab".repeat(32)),
        ("postgres://u@127.0.0.1:1/db", "SENTINEL-not-hex".to_owned()),
    ] {
        let text = format!(
            r#"
            [source]
            provider = "mypos"
            client_id = "id"
            client_secret = {{ value = "s" }}
            environment = "sandbox"

            [store]
            kind = "postgres"
            url = {{ value = "{url}" }}
            encryption_key = {{ value = "{key}" }}
            "#
        );
        let config = Config::from_toml(&text).unwrap();
        let http = payauth::core::http::default_client().unwrap();
        let error = config.cache(&http).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(!error.to_string().contains("SENTINEL"), "{error}");
    }
}

/// The error `text` gives, as the user reads it.
fn config_error(text: &str) -> String {
    let error = Config::from_toml(text).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    error.to_string()
}

#[test]
fn a_misspelt_key_anywhere_is_an_error_naming_it_with_its_line_and_column() {
    let mypos =
        "[source]\nprovider = \"mypos\"\nclient_id = \"a\"\nclient_secret = { env = \"X\" }\n";
    let vakifbank = "[source]\nprovider = \"vakifbank\"\nflow = \"client_credentials\"\nclient_id = \"a\"\nclient_secret = { env = \"X\" }\n";
    let cases = [
        // `base_ulr` once sent the request to the production host.
        (format!("{mypos}base_ulr = \"http://127.0.0.1:1\"\n"), "base_ulr", "line 5, column 1"),
        (format!("{vakifbank}sandobx = true\n"), "sandobx", "line 6, column 1"),
        (
            format!("{mypos}[store]\nkind = \"file\"\ndri = \"/tmp/x\"\n"),
            "dri",
            "line 7, column 1",
        ),
        (format!("refresh_margin = 5\n{mypos}"), "refresh_margin", "line 1, column 1"),
        (
            "[source]\nprovider = \"iyzico-pwi\"\napi_key = \"k\"\nsecret_key = { env = \"X\", fiel = \"/s\" }\nsession_token = { env = \"Y\" }\nmember_identifier = \"m\"\n".to_owned(),
            "fiel",
            "line 4, column 27",
        ),
        (
            "[source]\nprovider = \"mypos\"\nclient_id = \"a\"\n[source.client_secret]\nenv = \"X\"\nfiel = \"/s\"\n".to_owned(),
            "fiel",
            "line 6, column 1",
        ),
        (
            format!("{mypos}[source.extra]\nenvironmnet = \"sandbox\"\n"),
            "extra",
            "line 5, column 9",
        ),
    ];
    for (text, key, at) in cases {
        let shown = config_error(&text);
        assert!(
            shown.contains(&format!("unknown field `{key}`")),
            "{key}: {shown}"
        );
        assert!(shown.contains(at), "{key} should be at {at}: {shown}");
    }
}

#[test]
fn a_key_known_to_another_flow_is_refused_in_this_one() {
    let shown = config_error(
        "[source]\nprovider = \"vakifbank\"\nflow = \"client_credentials\"\nclient_id = \"a\"\nclient_secret = { env = \"X\" }\nconsent_id = \"c\"\n",
    );
    assert!(shown.contains("unknown field `consent_id`"), "{shown}");
    assert!(shown.contains("line 6, column 1"), "{shown}");
}

/// The store key a `[source]` table gives (built, never fetched).
/// The token source a `[source]` table builds, and its store key.
fn built(source: &str) -> (std::sync::Arc<dyn payauth::core::TokenSource>, String) {
    let config = Config::from_toml(&format!("[source]\n{source}"))
        .unwrap_or_else(|e| panic!("{source}: {e}"));
    let http = payauth::core::http::default_client().unwrap();
    config
        .source(&http)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn key(source: &str) -> String {
    built(source).1
}

fn vakifbank(flow: &str, rest: &str) -> String {
    format!(
        "provider = \"vakifbank\"\nflow = \"{flow}\"\nclient_secret = {{ value = \"s\" }}\n{rest}"
    )
}

#[test]
fn configs_that_must_not_share_tokens_never_share_a_store_key() {
    let mypos =
        |rest: &str| format!("provider = \"mypos\"\nclient_secret = {{ value = \"s\" }}\n{rest}");
    let terminal = |rest: &str| {
        format!(
            "provider = \"iyzico-terminal\"\nclient_secret = {{ value = \"s\" }}\npassword = {{ value = \"p\" }}\n{rest}"
        )
    };
    let pwi = |rest: &str| {
        format!(
            "provider = \"iyzico-pwi\"\napi_key = \"k\"\nsecret_key = {{ value = \"s\" }}\n{rest}"
        )
    };
    let configs = [
        // Environment (host) and client id.
        mypos("client_id = \"a\"\n"),
        mypos("client_id = \"a\"\nenvironment = \"production\"\n"),
        mypos("client_id = \"a\"\nenvironment = \"http://127.0.0.1:1\"\n"),
        mypos("client_id = \"a\"\nenvironment = \"http://127.0.0.1:2\"\n"),
        mypos("client_id = \"b\"\n"),
        mypos("client_id = \"a\"\nscopes = [\"webhooks\"]\n"),
        // Flow: the customer's token never serves a client-credentials config.
        vakifbank("client_credentials", "client_id = \"a\"\n"),
        vakifbank(
            "authorization_code",
            "client_id = \"a\"\ncustomer = \"alice\"\n",
        ),
        vakifbank(
            "b2b_credentials",
            "client_id = \"a\"\nconsent_id = \"c1\"\n",
        ),
        // Subjects.
        vakifbank(
            "authorization_code",
            "client_id = \"a\"\ncustomer = \"bob\"\n",
        ),
        vakifbank(
            "authorization_code",
            "client_id = \"a\"\ncustomer = \"alice\"\nchannel = \"corporate\"\n",
        ),
        vakifbank(
            "b2b_credentials",
            "client_id = \"a\"\nconsent_id = \"c2\"\n",
        ),
        // Scopes, the environment and the API plan.
        vakifbank(
            "client_credentials",
            "client_id = \"a\"\nscopes = [\"public\"]\n",
        ),
        vakifbank(
            "client_credentials",
            "client_id = \"a\"\nscopes = [\"public\", \"oob\"]\n",
        ),
        vakifbank(
            "client_credentials",
            "client_id = \"a\"\nenvironment = \"production\"\n",
        ),
        vakifbank(
            "client_credentials",
            "client_id = \"a\"\nresource = \"production\"\n",
        ),
        vakifbank(
            "client_credentials",
            "client_id = \"a\"\nenvironment = \"production\"\nresource = \"sandbox\"\n",
        ),
        // Terminal users and Pay-with-iyzico members and sessions.
        terminal("client_id = \"a\"\nusername = \"u1\"\n"),
        terminal("client_id = \"a\"\nusername = \"u2\"\n"),
        terminal("client_id = \"a\"\nusername = \"u1\"\nenvironment = \"production\"\n"),
        pwi("member_identifier = \"m1\"\nsession_token = { value = \"t1\" }\n"),
        pwi("member_identifier = \"m2\"\nsession_token = { value = \"t1\" }\n"),
        pwi("member_identifier = \"m1\"\nsession_token = { value = \"t2\" }\n"),
    ];
    let keys: Vec<String> = configs.iter().map(|c| key(c)).collect();
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "\n{}\nand\n{}\nshare a key", configs[i], configs[j]);
        }
    }
    assert!(
        keys.iter().all(|k| !k.contains("t1") && !k.contains("t2")),
        "{keys:?}"
    );
}

#[test]
fn every_flow_labels_its_metrics_and_spans_with_the_provider_and_flow_its_config_names() {
    let secret = "client_id = \"a\"\nclient_secret = { value = \"s\" }\n";
    let cases = [
        (format!("provider = \"mypos\"\n{secret}"), ("mypos", "client_credentials")),
        (vakifbank("client_credentials", "client_id = \"a\"\n"), ("vakifbank", "client_credentials")),
        (vakifbank("authorization_code", "client_id = \"a\"\ncustomer = \"alice\"\n"), ("vakifbank", "authorization_code")),
        (vakifbank("b2b_credentials", "client_id = \"a\"\nconsent_id = \"c1\"\n"), ("vakifbank", "b2b_credentials")),
        (
            format!("provider = \"iyzico-terminal\"\n{secret}password = {{ value = \"p\" }}\nusername = \"u\"\n"),
            ("iyzico", "terminal_login"),
        ),
        (
            "provider = \"iyzico-pwi\"\napi_key = \"k\"\nsecret_key = { value = \"s\" }\nmember_identifier = \"m\"\nsession_token = { value = \"t\" }\n".to_owned(),
            ("iyzico", "pwi"),
        ),
    ];
    for (config, expected) in cases {
        let (source, _) = built(&config);
        assert_eq!((source.provider(), source.flow()), expected, "{config}");
    }
}

#[test]
fn the_same_config_always_gives_the_same_key_whatever_the_scope_order() {
    let one = vakifbank(
        "client_credentials",
        "client_id = \"a\"\nscopes = [\"public\", \"oob\"]\n",
    );
    let same = vakifbank(
        "client_credentials",
        "client_id = \"a\"\nscopes = [\"oob\", \"public\", \"oob\"]\n",
    );
    assert_eq!(key(&one), key(&one));
    assert_eq!(key(&one), key(&same));
    // The environment written out is the default one.
    let explicit = vakifbank(
        "client_credentials",
        "client_id = \"a\"\nscopes = [\"oob\", \"public\"]\nenvironment = \"sandbox\"\nresource = \"sandbox\"\n",
    );
    assert_eq!(key(&one), key(&explicit));
}

#[test]
fn every_provider_defaults_to_its_sandbox_host() {
    for source in [
        "provider = \"mypos\"\nclient_id = \"a\"\nclient_secret = { value = \"s\" }\n".to_owned(),
        vakifbank("client_credentials", "client_id = \"a\"\n"),
        "provider = \"iyzico-terminal\"\nclient_id = \"a\"\nclient_secret = { value = \"s\" }\nusername = \"u\"\npassword = { value = \"p\" }\n".to_owned(),
        "provider = \"iyzico-pwi\"\napi_key = \"k\"\nsecret_key = { value = \"s\" }\nsession_token = { value = \"t\" }\nmember_identifier = \"m\"\n".to_owned(),
    ] {
        let key = key(&source);
        assert_eq!(key.split('/').nth(1), Some("sandbox"), "{key}");
    }
}

#[test]
fn every_provider_takes_allow_insecure_http_for_a_plain_http_proxy() {
    let http = payauth::core::http::default_client().unwrap();
    for source in [
        "provider = \"mypos\"\nclient_id = \"a\"\nclient_secret = { value = \"s\" }\n".to_owned(),
        vakifbank("client_credentials", "client_id = \"a\"\n"),
        "provider = \"iyzico-terminal\"\nclient_id = \"a\"\nclient_secret = { value = \"s\" }\nusername = \"u\"\npassword = { value = \"p\" }\n".to_owned(),
        "provider = \"iyzico-pwi\"\napi_key = \"k\"\nsecret_key = { value = \"s\" }\nsession_token = { value = \"t\" }\nmember_identifier = \"m\"\n".to_owned(),
    ] {
        let proxied = format!("[source]\n{source}environment = \"http://proxy.internal:8080\"\n");
        let Err(refused) = Config::from_toml(&proxied).unwrap().source(&http) else {
            panic!("plain http to a remote host was accepted: {proxied}");
        };
        assert!(refused.to_string().contains("refusing plain http://"), "{refused}");
        let allowed = format!("{proxied}allow_insecure_http = true\n");
        assert!(
            Config::from_toml(&allowed).unwrap().source(&http).is_ok(),
            "{allowed}"
        );
    }
}

#[test]
fn a_client_credentials_config_never_serves_the_customer_token_from_a_shared_file_store() {
    use payauth::core::{FlowSettings, StoredToken, TokenStore};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(Sandbox::builder().start()).unwrap();
    let temp = tempfile::tempdir().unwrap();
    // The store makes its own 0700 directory; a tempdir is 0755.
    let dir = temp.path().join("tokens");
    let common = format!(
        "[source]\nprovider = \"vakifbank\"\nenvironment = \"{}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\nscopes = [\"account\"]\n",
        sandbox.base_url(),
        defaults::VAKIFBANK_CLIENT_ID,
        defaults::VAKIFBANK_CLIENT_SECRET
    );
    let store = format!("[store]\nkind = \"file\"\ndir = \"{}\"\n", dir.display());
    let login = Config::from_toml(&format!(
        "{common}flow = \"authorization_code\"\ncustomer = \"alice\"\n{store}"
    ))
    .unwrap();
    let payauth::config::SourceConfig::Vakifbank(
        payauth::config::VakifBankFlow::AuthorizationCode(settings),
    ) = &login.source
    else {
        panic!("an authorization_code source");
    };
    let http = payauth::core::http::default_client().unwrap();
    let customer = runtime.block_on(async {
        let bank = payauth::vakifbank::VakifBank::new(&settings.gateway, &http).unwrap();
        let pending = settings
            .authorize_url(&bank, "https://app.example/cb")
            .unwrap();
        let redirect = payauth_sandbox::browser::authorize(&http, pending.url.as_str())
            .await
            .unwrap();
        let code = pending.callback(&redirect).unwrap();
        let token = bank.exchange(&pending, &code).await.unwrap();
        payauth::core::FileStore::new(&dir)
            .save(
                &settings.store_key().unwrap(),
                &StoredToken::from_token(&token),
            )
            .await
            .unwrap();
        token
    });
    // The login's own config finds the customer's token in the store.
    let served = runtime
        .block_on(login.cache(&http).unwrap().token())
        .unwrap();
    assert_eq!(served.secret(), customer.secret());

    let before = sandbox.requests(payauth_sandbox::Endpoint::VakifbankToken);
    let machine = Config::from_toml(&format!("{common}flow = \"client_credentials\"\n{store}"))
        .unwrap()
        .cache(&http)
        .unwrap();
    let token = runtime.block_on(machine.token()).unwrap();
    assert_ne!(
        token.secret(),
        customer.secret(),
        "the customer's token crossed flows"
    );
    assert_eq!(
        sandbox.requests(payauth_sandbox::Endpoint::VakifbankToken),
        before + 1,
        "the client-credentials config fetched its own token"
    );
}

#[test]
fn the_http_table_names_a_proxy_and_a_client_certificate_and_its_errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["merchant-client".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let chain_file = dir.path().join("client.pem");
    let key_file = dir.path().join("client-key.pem");
    std::fs::write(&chain_file, certificate.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let garbage_file = dir.path().join("garbage.pem");
    std::fs::write(&garbage_file, "KEY-CANARY").unwrap();
    let with_http = |http: &str| {
        Config::from_toml(&format!(
            "[source]\nprovider = \"mypos\"\nclient_id = \"a\"\nclient_secret = {{ env = \"X\" }}\n[http]\n{http}\n"
        ))
        .unwrap()
        .http_client()
        .map(|_| ())
        .map_err(|e| (e.kind(), e.to_string()))
    };
    let identity = |chain: &std::path::Path, key: &std::path::Path| {
        format!(
            "identity = {{ certificate_chain = {:?}, key = {{ file = {:?} }} }}",
            chain.display().to_string(),
            key.display().to_string()
        )
    };
    assert_eq!(with_http(""), Ok(()));
    assert_eq!(with_http(&identity(&chain_file, &key_file)), Ok(()));
    assert_eq!(
        with_http("proxy = { value = \"http://proxy.example:3128\" }"),
        Ok(())
    );
    let refused = [
        (
            "proxy = { value = \"gopher://u:CANARY@p.example\" }".to_owned(),
            "HttpClientBuilder::proxy",
        ),
        (
            identity(&dir.path().join("missing.pem"), &key_file),
            "missing.pem",
        ),
        (identity(&chain_file, &garbage_file), "client identity"),
    ];
    for (http, named) in refused {
        let (kind, shown) = with_http(&http).unwrap_err();
        assert_eq!(kind, ErrorKind::Config, "{http}: {shown}");
        assert!(shown.contains(named), "{http}: {shown}");
        assert!(!shown.contains("CANARY"), "{http}: {shown}");
    }
}
