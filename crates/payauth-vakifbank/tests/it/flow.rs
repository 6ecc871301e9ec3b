//! The VakıfBank flows against httpmock: authorize URLs, callbacks, every
//! grant in both client-auth styles, errors with `x-ca-err`, and the whole
//! walk from authorize URL to a rotated refresh token.

use httpmock::prelude::*;
use payauth_core::Environment;
use payauth_core::{ErrorKind, Secret, TokenCache, TokenSource};
use payauth_vakifbank::{Channel, ClientAuthStyle, VakifBank, VakifBankSettings};

const SENTINEL: &str = "SENTINEL-vakif-secret-19";

fn bank(server: &MockServer, style: ClientAuthStyle) -> VakifBank {
    let mut settings = VakifBankSettings::new(
        "app-key",
        Secret::new(SENTINEL),
        Environment::Custom(server.base_url()),
    );
    settings.client_auth = style;
    VakifBank::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap()
}

fn json(then: httpmock::Then, status: u16, body: &str) -> httpmock::Then {
    then.status(status)
        .header("content-type", "application/json")
        .body(body)
}

/// The URL with its random parts (`state`, `code_challenge`) replaced, for
/// a stable snapshot.
fn stable(url: &reqwest::Url) -> String {
    let pairs: Vec<String> = url
        .query_pairs()
        .map(|(k, v)| match &*k {
            "state" | "code_challenge" => format!("{k}=<random {} chars>", v.len()),
            _ => format!("{k}={v}"),
        })
        .collect();
    format!("{}\n{}", url.path(), pairs.join("\n"))
}

#[tokio::test]
async fn authorize_urls_for_retail_and_corporate_are_exactly_these() {
    let server = MockServer::start_async().await;
    let bank = bank(&server, ClientAuthStyle::Body);
    let retail = bank
        .authorize_url(
            Channel::Retail,
            &["account", "transfer"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let corporate = bank
        .authorize_url(
            Channel::Corporate,
            &["account"],
            "https://app.example/cb",
            true,
        )
        .unwrap();
    insta::assert_snapshot!("retail_authorize_url", stable(&retail.url));
    insta::assert_snapshot!("corporate_authorize_url_with_pkce", stable(&corporate.url));
    assert_eq!(retail.state.expose_secret().len(), 32);
    assert_ne!(retail.state, corporate.state, "a fresh state each time");
}

#[tokio::test]
async fn a_callback_with_the_wrong_state_or_an_error_is_refused() {
    let server = MockServer::start_async().await;
    let pending = bank(&server, ClientAuthStyle::Body)
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", false)
        .unwrap();
    let state = pending.state.expose_secret().to_owned();

    let forged = pending
        .callback("https://app/cb?code=c&state=forged")
        .unwrap_err();
    assert_eq!(forged.kind(), ErrorKind::InvalidRequest);
    assert_eq!(
        pending.callback("code=c").unwrap_err().kind(),
        ErrorKind::InvalidRequest,
        "missing state"
    );

    let denied = pending
        .callback(&format!("https://app/cb?error=access_denied&state={state}"))
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::AccessDenied);
    assert_eq!(denied.provider_code(), Some("access_denied"));

    assert_eq!(
        pending
            .callback(&format!("?state={state}"))
            .unwrap_err()
            .kind(),
        ErrorKind::Malformed
    );
    assert_eq!(
        pending
            .callback(&format!("https://app/cb?code=the-code&state={state}"))
            .unwrap()
            .expose_secret(),
        "the-code"
    );
}

#[tokio::test]
async fn a_callback_that_repeats_a_response_parameter_is_refused_whichever_comes_last() {
    let server = MockServer::start_async().await;
    let pending = bank(&server, ClientAuthStyle::Body)
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", false)
        .unwrap();
    let state = pending.state.expose_secret().to_owned();
    for query in [
        format!("code=c&state=forged&state={state}"),
        format!("code=c&state={state}&state={state}"),
        format!("code=evil&code=c&state={state}"),
        format!("error=access_denied&error=server_error&state={state}"),
        format!("code=c&error_description=a&error_description=b&state={state}"),
    ] {
        for redirect in [format!("https://app/cb?{query}"), query.clone()] {
            let error = pending.callback(&redirect).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{redirect}");
            assert!(error.to_string().contains("repeats"), "{error}");
        }
    }
    // The redirect URI's own parameters may repeat: they are not OAuth's.
    let own = format!("https://app/cb?x=1&x=2&code=c&state={state}");
    assert_eq!(pending.callback(&own).unwrap().expose_secret(), "c");
}

#[tokio::test]
async fn a_raw_question_mark_in_a_callback_is_part_of_the_value_in_every_form() {
    let server = MockServer::start_async().await;
    let pending = bank(&server, ClientAuthStyle::Body)
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", false)
        .unwrap();
    let state = pending.state.expose_secret().to_owned();
    for redirect in [
        format!("code=a?b&state={state}"),
        format!("state={state}&code=a?b"),
        format!("?code=a?b&state={state}"),
        format!("https://app/cb?code=a?b&state={state}"),
        format!("/cb?code=a?b&state={state}"),
        format!("myapp:/cb?code=a?b&state={state}"),
        format!("http://127.0.0.1:8080/cb?state={state}&code=a?b#fragment"),
    ] {
        let code = pending
            .callback(&redirect)
            .unwrap_or_else(|e| panic!("{redirect}: {e}"));
        assert_eq!(code.expose_secret(), "a?b", "{redirect}");
    }
}

#[tokio::test]
async fn authorize_redirect_callback_token_refresh_and_the_rotated_token_used_next() {
    let server = MockServer::start_async().await;
    let bank = bank(&server, ClientAuthStyle::Body);
    let pending = bank
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", true)
        .unwrap();
    let challenge = pending
        .url
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .unwrap()
        .1
        .into_owned();

    // The bank's login page, simulated: it redirects back with a code.
    let authorize = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/auth/oauth/v2/authorize")
                .query_param("code_challenge", challenge.as_str());
            then.status(302)
                .header("location", "https://app/cb?code=code-1&state=STATE");
        })
        .await;
    let http = payauth_core::http::default_client().unwrap();
    let request = http.requests().get(pending.url.clone()).build().unwrap();
    let redirect = http.execute(request).await.unwrap();
    assert_eq!(redirect.status(), 302, "redirects are not followed");
    let location = redirect.headers()["location"]
        .to_str()
        .unwrap()
        .replace("STATE", pending.state.expose_secret());
    let code = pending.callback(&location).unwrap();
    authorize.assert_async().await;

    let verifier = pending
        .code_verifier
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let exchange = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("grant_type", "authorization_code")
                .form_urlencoded_tuple("code", "code-1")
                .form_urlencoded_tuple("redirect_uri", "https://app/cb")
                .form_urlencoded_tuple("code_verifier", verifier.as_str())
                .form_urlencoded_tuple("client_id", "app-key");
            json(then, 200, r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"account"}"#);
        })
        .await;
    let first = bank.exchange(&pending, &code).await.unwrap();
    exchange.assert_async().await;
    assert_eq!(
        first.refresh_token().map(Secret::expose_secret),
        Some("rt-1")
    );

    let refresh_1 = server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/oauth/v2/token").form_urlencoded_tuple("refresh_token", "rt-1").form_urlencoded_tuple("scope", "account");
            json(then, 200, r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#);
        })
        .await;
    let refresh_2 = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("refresh_token", "rt-2");
            json(
                then,
                200,
                r#"{"access_token":"at-3","token_type":"Bearer","expires_in":3600}"#,
            );
        })
        .await;
    let source = bank.refresh_token(&["account"]);
    let second = source.fetch(Some(&first)).await.unwrap();
    assert_eq!(second.secret().expose_secret(), "at-2");
    let third = source.fetch(Some(&second)).await.unwrap();
    assert_eq!(third.secret().expose_secret(), "at-3");
    assert_eq!(
        third.refresh_token().map(Secret::expose_secret),
        Some("rt-2"),
        "no new one: the working one is kept"
    );
    refresh_1.assert_async().await;
    refresh_2.assert_async().await;
}

#[tokio::test]
async fn a_refused_refresh_token_says_log_in_again() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/oauth/v2/token");
            json(
                then,
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#,
            );
        })
        .await;
    let source = bank(&server, ClientAuthStyle::Body).refresh_token(&[]);
    let no_token = source.fetch(None).await.unwrap_err();
    assert_eq!(no_token.kind(), ErrorKind::InvalidGrant);
    let cache = TokenCache::builder(source).build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidGrant
    );
}

#[tokio::test]
async fn client_credentials_in_the_body_and_with_basic() {
    let server = MockServer::start_async().await;
    let body_style = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .header_missing("authorization")
                .body(format!("client_id=app-key&client_secret={SENTINEL}&grant_type=client_credentials&scope=public+oob"));
            json(then, 200, r#"{"access_token":"a","token_type":"Bearer","expires_in":"3600"}"#);
        })
        .await;
    let cache = TokenCache::builder(
        bank(&server, ClientAuthStyle::Body).client_credentials(&["public", "oob"]),
    )
    .build();
    assert_eq!(cache.token().await.unwrap().lifetime().as_secs(), 3600);
    body_style.assert_async().await;

    let server = MockServer::start_async().await;
    let basic_style = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .header_exists("authorization")
                .body("grant_type=client_credentials&scope=public");
            json(
                then,
                200,
                r#"{"access_token":"a","token_type":"Bearer","expires_in":3600}"#,
            );
        })
        .await;
    bank(&server, ClientAuthStyle::Basic)
        .client_credentials(&["public"])
        .fetch(None)
        .await
        .unwrap();
    basic_style.assert_async().await;
}

#[tokio::test]
async fn b2b_credentials_send_the_consent_and_resource_only_when_told() {
    let server = MockServer::start_async().await;
    let documented = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("grant_type", "b2b_credentials")
                .form_urlencoded_tuple("consentId", "consent-9")
                .form_urlencoded_tuple_missing("resource")
                .form_urlencoded_tuple("scope", "account");
            json(
                then,
                200,
                r#"{"access_token":"b","token_type":"Bearer","expires_in":3600}"#,
            );
        })
        .await;
    let with_resource = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("grant_type", "b2b_credentials")
                .form_urlencoded_tuple("resource", "sandbox");
            json(then, 200, r#"{"access_token":"c","expires_in":3600}"#);
        })
        .await;
    let bank = bank(&server, ClientAuthStyle::Body);
    bank.b2b_credentials(&["account"], "consent-9")
        .fetch(None)
        .await
        .unwrap();
    documented.assert_async().await;
    bank.b2b_credentials(&["account"], "consent-9")
        .send_resource(true)
        .fetch(None)
        .await
        .unwrap();
    with_resource.assert_async().await;
}

#[tokio::test]
async fn invalid_client_on_400_or_401_keeps_the_x_ca_err_code_and_no_secret() {
    for status in [400, 401] {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path("/auth/oauth/v2/token");
                json(then, status, r#"{"error":"invalid_client","error_description":"The given client credentials were not valid"}"#)
                    .header("x-ca-err", "3003201");
            })
            .await;
        let error = bank(&server, ClientAuthStyle::Body)
            .client_credentials(&["public"])
            .fetch(None)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidClient, "HTTP {status}");
        assert_eq!(error.provider_code(), Some("3003201"));
        assert!(!format!("{error} {error:?}").contains(SENTINEL));
    }
}

#[tokio::test]
async fn an_unsupported_grant_type_is_typed() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/oauth/v2/token");
            json(then, 400, r#"{"error":"unsupported_grant_type"}"#);
        })
        .await;
    let error = bank(&server, ClientAuthStyle::Body)
        .client_credentials(&[])
        .fetch(None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnsupportedGrantType);
}

#[tokio::test]
async fn every_grant_on_the_wire_is_exactly_this() {
    let server = MockServer::start_async().await;
    let (seen, record) = payauth_testkit::wire_recorder();
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/auth/oauth/v2/token").is_true(record);
            json(then, 200, r#"{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#);
        })
        .await;
    let body_bank = bank(&server, ClientAuthStyle::Body);
    let pending = body_bank
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", false)
        .unwrap();
    let first = body_bank
        .exchange(&pending, &Secret::new("code-1"))
        .await
        .unwrap();
    body_bank
        .refresh_token(&["account"])
        .fetch(Some(&first))
        .await
        .unwrap();
    body_bank
        .client_credentials(&["public", "oob"])
        .fetch(None)
        .await
        .unwrap();
    body_bank
        .b2b_credentials(&["account"], "consent-9")
        .fetch(None)
        .await
        .unwrap();
    bank(&server, ClientAuthStyle::Basic)
        .client_credentials(&["public"])
        .fetch(None)
        .await
        .unwrap();

    let wire: Vec<String> = (0..5).map(|n| payauth_testkit::nth(&seen, n)).collect();
    insta::assert_snapshot!("grants_on_the_wire", wire.join("\n\n----\n\n"));
}

#[tokio::test]
async fn settings_build_each_grant_with_their_scopes_and_consent() {
    use payauth_core::FlowSettings;
    use payauth_vakifbank::{B2bCredentialsSettings, ClientCredentialsSettings};
    let server = MockServer::start_async().await;
    let cc = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("grant_type", "client_credentials")
                .form_urlencoded_tuple("scope", "public oob");
            json(then, 200, r#"{"access_token":"a","expires_in":60}"#);
        })
        .await;
    let b2b = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .form_urlencoded_tuple("grant_type", "b2b_credentials")
                .form_urlencoded_tuple("consentId", "c-1")
                .form_urlencoded_tuple("scope", "account");
            json(then, 200, r#"{"access_token":"b","expires_in":60}"#);
        })
        .await;
    let http = payauth_core::http::default_client().unwrap();
    let gateway = VakifBankSettings::new(
        "app-key",
        Secret::new(SENTINEL),
        Environment::Custom(server.base_url()),
    );
    ClientCredentialsSettings::new(gateway.clone())
        .scopes(["public", "oob"])
        .build(&http)
        .unwrap()
        .fetch(None)
        .await
        .unwrap();
    B2bCredentialsSettings::new(gateway, "c-1")
        .scopes(["account"])
        .build(&http)
        .unwrap()
        .fetch(None)
        .await
        .unwrap();
    cc.assert_async().await;
    b2b.assert_async().await;
}

/// A gateway on `server` with `change` applied to its settings.
fn bank_with(server: &MockServer, change: impl FnOnce(&mut VakifBankSettings)) -> VakifBank {
    let mut settings = VakifBankSettings::new(
        "app-key",
        Secret::new(SENTINEL),
        Environment::Custom(server.base_url()),
    );
    change(&mut settings);
    VakifBank::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap()
}

/// Runs every grant (exchange, refresh, client and B2B credentials) on
/// `bank` and returns the four requests as they went on the wire.
async fn every_grant(server: &MockServer, bank: &VakifBank) -> Vec<String> {
    let (seen, record) = payauth_testkit::wire_recorder();
    let mock = server
        .mock_async(move |when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .is_true(record);
            json(
                then,
                200,
                r#"{"access_token":"a","expires_in":3600,"refresh_token":"rt-2"}"#,
            );
        })
        .await;
    let pending = bank
        .authorize_url(Channel::Retail, &["account"], "https://app/cb", false)
        .unwrap();
    let first = bank
        .exchange(&pending, &Secret::new("code-1"))
        .await
        .unwrap();
    bank.refresh_token(&["account"])
        .fetch(Some(&first))
        .await
        .unwrap();
    bank.client_credentials(&["public"])
        .fetch(None)
        .await
        .unwrap();
    bank.b2b_credentials(&["account"], "c-1")
        .fetch(None)
        .await
        .unwrap();
    let wire = (0..4).map(|n| payauth_testkit::nth(&seen, n)).collect();
    mock.delete_async().await;
    wire
}

#[tokio::test]
async fn every_grant_sends_the_api_plan_as_resource_only_when_told() {
    let server = MockServer::start_async().await;
    let documented = every_grant(&server, &bank_with(&server, |_| {})).await;
    for request in &documented {
        assert!(
            !request.contains("resource="),
            "not sent by default: {request}"
        );
    }
    for (plan, expected) in [
        (None, "resource=sandbox"),
        (
            Some(payauth_vakifbank::Resource::Production),
            "resource=production",
        ),
    ] {
        let bank = bank_with(&server, |s| {
            s.send_resource = true;
            s.resource = plan;
        });
        for request in every_grant(&server, &bank).await {
            let body = request.lines().last().unwrap();
            assert_eq!(
                body.matches(expected).count(),
                1,
                "{plan:?}: every grant carries the plan once: {request}"
            );
        }
    }
    // The builder on a handle says the same.
    let bank = bank_with(&server, |_| {}).send_resource(true);
    for request in every_grant(&server, &bank).await {
        assert!(request.contains("resource=sandbox"), "{request}");
    }
}

#[tokio::test]
async fn the_code_exchange_with_no_client_auth_is_exactly_the_documented_request() {
    let server = MockServer::start_async().await;
    let bank = bank_with(&server, |s| {
        s.exchange_client_auth = Some(ClientAuthStyle::None);
    });
    let wire = every_grant(&server, &bank).await;
    let exchange = &wire[0];
    assert!(!exchange.contains("authorization:"), "{exchange}");
    assert_eq!(
        exchange.lines().last().unwrap(),
        "code=code-1&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp%2Fcb"
    );
    // The other grants still name their client.
    for request in &wire[1..] {
        assert!(
            request.contains("client_id=app-key&client_secret="),
            "{request}"
        );
    }
}

#[test]
fn no_client_auth_is_refused_for_the_grants_that_name_their_client() {
    let mut settings =
        VakifBankSettings::new("app-key", Secret::new(SENTINEL), Environment::Sandbox);
    settings.client_auth = ClientAuthStyle::None;
    let error =
        VakifBank::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error.to_string().contains("exchange_client_auth"),
        "{error}"
    );
    assert_eq!(
        "none".parse::<ClientAuthStyle>().unwrap(),
        ClientAuthStyle::None
    );
}
