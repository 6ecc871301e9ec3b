//! What the vendors' servers do, end to end against the sandbox: each
//! provider's client, in each setting payauth offers for a guess, against
//! a sandbox told to behave each way the vendor might.

use std::sync::{Arc, Mutex};

use httpmock::prelude::*;
use payauth::config::{Config, Provider};
use payauth::core::oauth2::BasicEncoding;
use payauth::core::{Environment, ErrorKind, FlowSettings, Secret};
use payauth::iyzico::TerminalLoginSettings;
use payauth::middleware::BearerAuth;
use payauth::mypos::MyposSettings;
use payauth::vakifbank::{
    B2bCredentialsSettings, Channel, ClientAuthStyle, ClientCredentialsSettings, VakifBank,
    VakifBankSettings,
};
use payauth_sandbox::{
    Behaviour, ClientAuthCheck, RunningSandbox, Sandbox, SandboxCredentials, defaults,
};

/// A secret holding every character the two Basic encodings write
/// differently.
const HOSTILE: &str = "s+e/c=r%t:x y";

const ENCODINGS: [BasicEncoding; 2] = [BasicEncoding::Plain, BasicEncoding::Rfc6749];

fn http() -> payauth::core::http::HttpClient {
    payauth::core::http::default_client().unwrap()
}

/// A sandbox whose every client secret is [`HOSTILE`] and whose every
/// Basic decoder is `server`.
async fn hostile_sandbox(server: BasicEncoding) -> RunningSandbox {
    let credentials = SandboxCredentials {
        iyzico_client_secret: Secret::new(HOSTILE),
        mypos_client_secret: Secret::new(HOSTILE),
        vakifbank_client_secret: Secret::new(HOSTILE),
        ..SandboxCredentials::default()
    };
    let behaviour = Behaviour {
        iyzico_basic: server,
        mypos_basic: server,
        vakifbank_basic: server,
        ..Behaviour::default()
    };
    Sandbox::builder()
        .credentials(credentials)
        .behaviour(behaviour)
        .start()
        .await
        .unwrap()
}

/// Each Basic flow's token with `client` encoding against `sandbox`.
async fn basic_fetches(
    sandbox: &RunningSandbox,
    client: BasicEncoding,
) -> Vec<(&'static str, Result<(), ErrorKind>)> {
    let http = http();
    let environment = Environment::Custom(sandbox.base_url());
    let mut mypos = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(HOSTILE),
        environment.clone(),
    );
    mypos.basic_encoding = client;
    let mut terminal = TerminalLoginSettings::new(
        defaults::IYZICO_CLIENT_ID,
        Secret::new(HOSTILE),
        defaults::IYZICO_USERNAME,
        Secret::new(defaults::IYZICO_PASSWORD),
        environment.clone(),
    );
    terminal.basic_encoding = client;
    let mut gateway = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(HOSTILE),
        environment,
    );
    gateway.client_auth = ClientAuthStyle::Basic;
    gateway.basic_encoding = client;
    let vakifbank = ClientCredentialsSettings::new(gateway);
    let outcome = |r: Result<_, payauth::core::Error>| r.map(|_| ()).map_err(|e| e.kind());
    vec![
        (
            "mypos",
            outcome(mypos.build(&http).unwrap().fetch_token().await),
        ),
        (
            "iyzico terminal",
            outcome(terminal.build(&http).unwrap().login().await),
        ),
        (
            "vakifbank",
            outcome(
                payauth::core::TokenSource::fetch(&vakifbank.build(&http).unwrap(), None).await,
            ),
        ),
    ]
}

#[tokio::test]
async fn a_hostile_secret_passes_basic_only_when_client_and_server_encode_alike() {
    for server in ENCODINGS {
        let sandbox = hostile_sandbox(server).await;
        for client in ENCODINGS {
            for (flow, outcome) in basic_fetches(&sandbox, client).await {
                if client == server {
                    assert_eq!(outcome, Ok(()), "{flow}: {client} against {server}");
                } else {
                    assert_eq!(
                        outcome,
                        Err(ErrorKind::InvalidClient),
                        "{flow}: {client} against {server}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn each_provider_defaults_to_the_basic_encoding_its_vendor_documents() {
    assert_eq!(payauth::iyzico::auth::BASIC_ENCODING, BasicEncoding::Plain);
    assert_eq!(payauth::mypos::auth::BASIC_ENCODING, BasicEncoding::Plain);
    assert_eq!(
        payauth::vakifbank::auth::BASIC_ENCODING,
        BasicEncoding::Rfc6749
    );
    // And the sandbox decodes as each vendor would.
    let behaviour = Behaviour::default();
    assert_eq!(behaviour.iyzico_basic, BasicEncoding::Plain);
    assert_eq!(behaviour.mypos_basic, BasicEncoding::Plain);
    assert_eq!(behaviour.vakifbank_basic, BasicEncoding::Rfc6749);
    let settings = MyposSettings::new("id", Secret::new("s"), Environment::Sandbox);
    assert_eq!(settings.basic_encoding, BasicEncoding::Plain);
}

// --- Later calls carry the token the provider's way -----------------------

fn config(toml: &str) -> Config {
    Config::from_toml(toml).unwrap()
}

fn mypos_config(sandbox: &RunningSandbox) -> Config {
    config(&format!(
        r#"
        [source]
        provider = "mypos"
        environment = "{}"
        client_id = "{}"
        client_secret = {{ value = "{}" }}
        "#,
        sandbox.base_url(),
        defaults::MYPOS_CLIENT_ID,
        defaults::MYPOS_CLIENT_SECRET,
    ))
}

fn pwi_config(sandbox: &RunningSandbox) -> Config {
    config(&format!(
        r#"
        [source]
        provider = "iyzico-pwi"
        environment = "{}"
        api_key = "{}"
        secret_key = {{ value = "{}" }}
        session_token = {{ value = "{}" }}
        member_identifier = "{}"
        locale = "en"
        conversation_id = "order-1"
        "#,
        sandbox.base_url(),
        defaults::IYZICO_API_KEY,
        defaults::IYZICO_SECRET_KEY,
        defaults::PWI_SESSION_TOKEN,
        defaults::PWI_MEMBER_IDENTIFIER,
    ))
}

fn with_middleware(cache: payauth::core::TokenCache) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(cache))
        .build()
}

/// Every request the API saw: its headers, path and body.
type Seen = Arc<Mutex<Vec<(http::HeaderMap, String, Vec<u8>)>>>;

fn recorder() -> (
    Seen,
    impl Fn(&httpmock::HttpMockRequest) -> bool + Send + Sync + 'static,
) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    (seen, move |req: &httpmock::HttpMockRequest| {
        record.lock().unwrap().push((
            req.headers(),
            req.uri().path().to_owned(),
            req.body_ref().to_vec(),
        ));
        true
    })
}

#[tokio::test]
async fn a_config_built_mypos_cache_sends_api_key_and_a_fresh_request_id_through_the_middleware() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let api = MockServer::start_async().await;
    let (seen, record) = recorder();
    api.mock_async(|when, then| {
        when.method(GET).path("/v1/transactions").is_true(record);
        then.status(200);
    })
    .await;
    let cache = mypos_config(&sandbox).cache(&http()).unwrap();
    let client = with_middleware(cache.clone());
    for _ in 0..2 {
        let response = client
            .get(api.url("/v1/transactions"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let token = cache.token().await.unwrap();
    let seen = seen.lock().unwrap();
    let ids: Vec<&str> = seen
        .iter()
        .map(|(headers, _, _)| {
            assert_eq!(
                headers["authorization"],
                token.authorization().to_str().unwrap()
            );
            assert_eq!(headers["api-key"], defaults::MYPOS_CLIENT_ID);
            headers["x-request-id"].to_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "a fresh X-Request-ID per call");
    assert!(
        ids.iter()
            .all(|id| id.len() == 36 && id.as_bytes()[14] == b'4'),
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_config_built_pwi_cache_signs_each_call_and_sends_the_token_as_access_token() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let api = MockServer::start_async().await;
    let (seen, record) = recorder();
    api.mock_async(|when, then| {
        when.method(POST)
            .path("/v1/pay-with-iyzico/payment")
            .is_true(record);
        then.status(200);
    })
    .await;
    let cache = pwi_config(&sandbox).cache(&http()).unwrap();
    let body = r#"{"locale":"en","paymentId":"p-1"}"#;
    let response = with_middleware(cache.clone())
        .post(api.url("/v1/pay-with-iyzico/payment?x=1"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token = cache.token().await.unwrap();
    let seen = seen.lock().unwrap();
    let (headers, path, sent) = &seen[0];
    assert_eq!(headers["access-token"], token.secret().expose_secret());
    assert_eq!(sent, body.as_bytes());
    let random_key = headers["x-iyzi-rnd"].to_str().unwrap();
    let expected = payauth::iyzico::iyzwsv2::authorization(
        defaults::IYZICO_API_KEY,
        &Secret::new(defaults::IYZICO_SECRET_KEY),
        random_key,
        path,
        sent,
    );
    assert_eq!(
        headers["authorization"],
        expected.to_str().unwrap(),
        "IYZWSv2, not Bearer"
    );
}

#[tokio::test]
async fn a_config_built_pwi_cache_passes_the_sandbox_s_later_call_that_checks_the_access_token() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let cache = pwi_config(&sandbox).cache(&http()).unwrap();
    let body = serde_json::json!({
        "sessionToken": defaults::PWI_SESSION_TOKEN,
        "memberIdentifier": defaults::PWI_MEMBER_IDENTIFIER,
        "locale": "en",
    })
    .to_string();
    let url = sandbox.url(payauth_sandbox::Endpoint::PwiLastPaymentInfo);
    let response = with_middleware(cache)
        .post(&url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (status.as_u16(), &answer["status"]),
        (200, &serde_json::json!("success")),
        "{answer}"
    );
    // The same signed call without the member's token is refused.
    let signed = payauth::iyzico::iyzwsv2::authorization(
        defaults::IYZICO_API_KEY,
        &Secret::new(defaults::IYZICO_SECRET_KEY),
        "rnd-1",
        payauth_sandbox::Endpoint::PwiLastPaymentInfo.path(),
        body.as_bytes(),
    );
    let refused = reqwest::Client::new()
        .post(&url)
        .header("authorization", signed)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn through_tower_a_pwi_call_whose_body_cannot_be_signed_fails_with_a_typed_error() {
    use tower::{Layer as _, ServiceExt as _};
    let sandbox = Sandbox::builder().start().await.unwrap();
    let cache = pwi_config(&sandbox).cache(&http()).unwrap();
    let reached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&reached);
    let api = tower::service_fn(move |_: http::Request<String>| {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
    });
    let service = payauth::tower::BearerLayer::new(cache).layer(api);
    let request = http::Request::post("https://api.example/v1/pay-with-iyzico/payment")
        .body("{}".to_owned())
        .unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    let error = error.downcast::<payauth::core::Error>().unwrap();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error.to_string().contains("signs the request body"),
        "{error}"
    );
    assert!(
        !reached.load(std::sync::atomic::Ordering::SeqCst),
        "nothing unsigned was sent"
    );
}

#[tokio::test]
async fn through_tower_a_config_built_mypos_cache_sends_its_headers() {
    use tower::{Layer as _, ServiceExt as _};
    let sandbox = Sandbox::builder().start().await.unwrap();
    let cache = mypos_config(&sandbox).cache(&http()).unwrap();
    let api = tower::service_fn(|request: http::Request<String>| async move {
        let headers = request.headers();
        let ok = headers.contains_key("x-request-id")
            && headers["api-key"] == defaults::MYPOS_CLIENT_ID
            && headers["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Bearer ");
        let mut response = http::Response::new(String::new());
        *response.status_mut() = if ok {
            http::StatusCode::OK
        } else {
            http::StatusCode::BAD_REQUEST
        };
        Ok::<_, std::convert::Infallible>(response)
    });
    let service = payauth::tower::BearerLayer::new(cache).layer(api);
    let request = http::Request::get("https://api.example/v1")
        .body(String::new())
        .unwrap();
    assert_eq!(service.oneshot(request).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_config_gives_the_provider_handle_over_the_cache_s_own_source() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let opened = mypos_config(&sandbox).open(&http()).unwrap();
    let token = opened.cache.token().await.unwrap();
    let Provider::Mypos(mypos) = &opened.provider else {
        panic!("a myPOS config opens a myPOS handle");
    };
    mypos.revoke_cached(&opened.cache).await.unwrap();
    assert!(sandbox.is_revoked(token.secret().expose_secret()));
    assert!(
        opened.cache.peek().is_none(),
        "dropped from the cache it came from"
    );
    let opened = pwi_config(&sandbox).open(&http()).unwrap();
    assert!(matches!(opened.provider, Provider::IyzicoPwi(_)));
}

#[tokio::test]
async fn a_token_put_on_a_request_by_hand_uses_the_cache_s_scheme() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let cache = mypos_config(&sandbox).cache(&http()).unwrap();
    let mut request = reqwest::Client::new()
        .get("https://api.example/v1/x")
        .build()
        .unwrap();
    let token = payauth::core::scheme::authorize(&cache, &mut request)
        .await
        .unwrap();
    assert_eq!(
        request.headers()["authorization"],
        token.authorization().to_str().unwrap()
    );
    assert_eq!(request.headers()["api-key"], defaults::MYPOS_CLIENT_ID);
    assert!(request.headers().contains_key("x-request-id"));
}

// --- VakıfBank: where the client credentials go, and `resource` ----------

fn gateway(sandbox: &RunningSandbox) -> VakifBankSettings {
    VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    )
}

/// A customer's login through the sandbox's authorize page, exchanged by
/// a gateway with these settings.
async fn exchange(settings: &VakifBankSettings) -> Result<(), ErrorKind> {
    let http = http();
    let bank = VakifBank::new(settings, &http).unwrap();
    let pending = bank
        .authorize_url(
            Channel::Retail,
            &["account"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let redirect = payauth_sandbox::browser::authorize(&http, pending.url.as_str())
        .await
        .unwrap();
    let code = pending.callback(&redirect).unwrap();
    bank.exchange(&pending, &code)
        .await
        .map(|_| ())
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn the_code_exchange_sends_the_client_credentials_where_told_and_a_strict_gateway_refuses_elsewhere()
 {
    let sandbox = Sandbox::builder().start().await.unwrap();
    for (gateway_accepts, works_with) in [
        (ClientAuthCheck::BodyOnly, ClientAuthStyle::Body),
        (ClientAuthCheck::BasicOnly, ClientAuthStyle::Basic),
    ] {
        sandbox.update_behaviour(|b| b.vakifbank_client_auth = gateway_accepts);
        for exchange_style in [ClientAuthStyle::Body, ClientAuthStyle::Basic] {
            let mut settings = gateway(&sandbox);
            // The other grants keep the body; only the exchange moves.
            settings.exchange_client_auth = Some(exchange_style);
            let expected = if exchange_style == works_with {
                Ok(())
            } else {
                Err(ErrorKind::InvalidClient)
            };
            assert_eq!(
                exchange(&settings).await,
                expected,
                "{exchange_style:?} against {gateway_accepts:?}"
            );
        }
    }
    // By default the exchange sends them where `client_auth` says.
    sandbox.update_behaviour(|b| b.vakifbank_client_auth = ClientAuthCheck::BasicOnly);
    let mut settings = gateway(&sandbox);
    assert_eq!(exchange(&settings).await, Err(ErrorKind::InvalidClient));
    settings.client_auth = ClientAuthStyle::Basic;
    assert_eq!(exchange(&settings).await, Ok(()));
}

#[tokio::test]
async fn the_documented_code_exchange_with_no_client_auth_works_where_the_gateway_takes_it() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let mut settings = gateway(&sandbox);
    settings.exchange_client_auth = Some(ClientAuthStyle::None);
    assert_eq!(exchange(&settings).await, Err(ErrorKind::InvalidClient));
    sandbox.update_behaviour(|b| b.vakifbank_public_exchange = true);
    assert_eq!(exchange(&settings).await, Ok(()));
}

#[tokio::test]
async fn resource_on_every_grant_is_off_by_default_and_each_gateway_mode_takes_only_its_own() {
    use payauth::core::TokenSource;
    use payauth_sandbox::ResourceCheck;
    let sandbox = Sandbox::builder().start().await.unwrap();
    // Every grant, through the sandbox: the code exchange and client and
    // B2B credentials; refresh sends what the others send.
    let grants = |send_resource: bool| {
        let mut settings = gateway(&sandbox);
        settings.send_resource = send_resource;
        async move {
            let http = http();
            let cc = ClientCredentialsSettings::new(settings.clone()).scopes(["public"]);
            let b2b = B2bCredentialsSettings::new(settings.clone(), defaults::VAKIFBANK_CONSENT_ID)
                .scopes(["account"]);
            let kind = |r: Result<payauth::core::AccessToken, payauth::core::Error>| {
                r.map(drop).map_err(|e| e.kind())
            };
            vec![
                exchange(&settings).await,
                kind(TokenSource::fetch(&cc.build(&http).unwrap(), None).await),
                kind(TokenSource::fetch(&b2b.build(&http).unwrap(), None).await),
            ]
        }
    };
    for (check, without, with) in [
        (ResourceCheck::Plan, Ok(()), Ok(())),
        (
            ResourceCheck::Required,
            Err(ErrorKind::InvalidRequest),
            Ok(()),
        ),
        (ResourceCheck::Rfc8707, Ok(()), Err(ErrorKind::Provider)),
    ] {
        sandbox.update_behaviour(|b| b.vakifbank_resource = check);
        assert_eq!(grants(false).await, vec![without; 3], "{check:?}, not sent");
        assert_eq!(grants(true).await, vec![with; 3], "{check:?}, sent");
    }
}

#[tokio::test]
async fn a_config_file_s_send_resource_reaches_every_vakifbank_grant() {
    use payauth_sandbox::ResourceCheck;
    let sandbox = Sandbox::builder().start().await.unwrap();
    sandbox.update_behaviour(|b| b.vakifbank_resource = ResourceCheck::Required);
    let source = |flow: &str, extra: &str| {
        config(&format!(
            r#"
            [source]
            provider = "vakifbank"
            flow = "{flow}"
            environment = "{}"
            client_id = "{}"
            client_secret = {{ value = "{}" }}
            {extra}
            "#,
            sandbox.base_url(),
            defaults::VAKIFBANK_CLIENT_ID,
            defaults::VAKIFBANK_CLIENT_SECRET,
        ))
    };
    let consent = format!("consent_id = \"{}\"", defaults::VAKIFBANK_CONSENT_ID);
    for (flow, extra) in [
        ("client_credentials", String::new()),
        ("b2b_credentials", consent),
    ] {
        let fetch = |config: Config| async move {
            let cache = config.cache(&http()).unwrap();
            cache.token().await.map(drop).map_err(|e| e.kind())
        };
        assert_eq!(
            fetch(source(flow, &extra)).await,
            Err(ErrorKind::InvalidRequest),
            "{flow}: not sent by default"
        );
        assert_eq!(
            fetch(source(flow, &format!("{extra}\nsend_resource = true"))).await,
            Ok(()),
            "{flow}: sent when the file says so"
        );
    }
}

// --- A lifetime nobody sent is a setting ---------------------------------

/// A server answering every token request with a token and no
/// `expires_in`.
async fn no_expires_in() -> MockServer {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"code":"c"}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"t","token_type":"Bearer"}"#);
        })
        .await;
    server
}

fn lifetime_configs(base: &str, lifetime: &str) -> Vec<(&'static str, String, u64)> {
    vec![
        (
            "mypos",
            format!(
                "[source]\nprovider = \"mypos\"\nenvironment = \"{base}\"\nclient_id = \"c\"\nclient_secret = {{ value = \"s\" }}\n{lifetime}"
            ),
            3600,
        ),
        (
            "vakifbank",
            format!(
                "[source]\nprovider = \"vakifbank\"\nflow = \"client_credentials\"\nenvironment = \"{base}\"\nclient_id = \"c\"\nclient_secret = {{ value = \"s\" }}\n{lifetime}"
            ),
            3600,
        ),
        (
            "iyzico-terminal",
            format!(
                "[source]\nprovider = \"iyzico-terminal\"\nenvironment = \"{base}\"\nclient_id = \"c\"\nclient_secret = {{ value = \"s\" }}\nusername = \"u\"\npassword = {{ value = \"p\" }}\n{lifetime}"
            ),
            7199,
        ),
    ]
}

#[tokio::test]
async fn the_lifetime_assumed_without_expires_in_is_each_providers_default_or_the_setting() {
    let server = no_expires_in().await;
    for (setting, configured) in [("", None), ("default_lifetime_secs = 120\n", Some(120))] {
        for (provider, toml, fallback) in lifetime_configs(&server.base_url(), setting) {
            let (source, _) = config(&toml).source(&http()).unwrap();
            let token = source.fetch(None).await.unwrap();
            assert_eq!(
                token.lifetime().as_secs(),
                configured.unwrap_or(fallback),
                "{provider} {setting}"
            );
        }
    }
    for (provider, toml, _) in lifetime_configs(&server.base_url(), "default_lifetime_secs = 0\n") {
        let Err(error) = config(&toml).source(&http()) else {
            panic!("{provider}: a zero lifetime is refused");
        };
        assert_eq!(error.kind(), ErrorKind::Config, "{provider}");
    }
}
