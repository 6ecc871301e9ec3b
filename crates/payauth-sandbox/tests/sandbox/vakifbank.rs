//! VakıfBank API Gateway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use payauth_sandbox::{Endpoint, RunningSandbox, Sandbox, SandboxCredentials, defaults};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{basic, client, form, post_form, sandbox, status_json};

const REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// The query of a VakıfBank authorize request, with `change` applied.
fn authorize_query(change: impl FnOnce(&mut Vec<(&'static str, String)>)) -> String {
    let mut pairs = vec![
        ("client_id", defaults::VAKIFBANK_CLIENT_ID.to_owned()),
        ("response_type", "code".to_owned()),
        ("scope", "transfer".to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("resource", "sandbox".to_owned()),
        ("state", "xyz 1/2".to_owned()),
    ];
    change(&mut pairs);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form(&pairs)
}

/// GETs the authorize endpoint; the status and the `Location` query pairs.
async fn authorize(
    sandbox: &RunningSandbox,
    endpoint: Endpoint,
    query: &str,
) -> (u16, Option<(String, Vec<(String, String)>)>) {
    let response = client()
        .get(format!("{}?{query}", sandbox.url(endpoint)))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|l| {
        let l = l.to_str().unwrap();
        let (base, query) = l.split_once('?').unwrap();
        let pairs = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        (base.to_owned(), pairs)
    });
    (status, location)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A code for the default query plus `extra` parameters.
async fn code(sandbox: &RunningSandbox, extra: &[(&'static str, &str)]) -> String {
    let query = authorize_query(|p| p.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned()))));
    let (status, location) = authorize(sandbox, Endpoint::VakifbankAuthorize, &query).await;
    assert_eq!(status, 302);
    let (_, pairs) = location.unwrap();
    param(&pairs, "code").unwrap().to_owned()
}

/// POSTs to the token endpoint with the client's credentials in the body.
async fn token(sandbox: &RunningSandbox, pairs: &[(&str, &str)]) -> (u16, Value) {
    let mut pairs = pairs.to_vec();
    pairs.push(("client_id", defaults::VAKIFBANK_CLIENT_ID));
    pairs.push(("client_secret", defaults::VAKIFBANK_CLIENT_SECRET));
    status_json(post_form(sandbox, Endpoint::VakifbankToken, None, &pairs).await).await
}

#[tokio::test]
async fn retail_authorize_redirects_with_a_code_and_the_state_echoed() {
    let sandbox = sandbox().await;
    let (status, location) = authorize(
        &sandbox,
        Endpoint::VakifbankAuthorize,
        &authorize_query(|_| {}),
    )
    .await;
    assert_eq!(status, 302);
    let (base, pairs) = location.unwrap();
    assert_eq!(base, REDIRECT_URI);
    assert!(param(&pairs, "code").is_some_and(|c| !c.is_empty()));
    assert_eq!(param(&pairs, "state"), Some("xyz 1/2"));
}

#[tokio::test]
async fn corporate_authorize_leaves_the_state_out_when_none_was_sent() {
    let sandbox = sandbox().await;
    let query = authorize_query(|p| p.retain(|(k, _)| *k != "state"));
    let (status, location) =
        authorize(&sandbox, Endpoint::VakifbankCommercialAuthorize, &query).await;
    assert_eq!(status, 302);
    let (_, pairs) = location.unwrap();
    assert!(param(&pairs, "code").is_some());
    assert_eq!(param(&pairs, "state"), None);
}

#[tokio::test]
async fn a_refusing_customer_is_redirected_with_access_denied() {
    let sandbox = sandbox().await;
    sandbox.update_behaviour(|b| b.vakifbank_customer_refuses = true);
    let (status, location) = authorize(
        &sandbox,
        Endpoint::VakifbankAuthorize,
        &authorize_query(|_| {}),
    )
    .await;
    assert_eq!(status, 302);
    let (_, pairs) = location.unwrap();
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some("xyz 1/2"));
    assert_eq!(param(&pairs, "code"), None);
}

#[tokio::test]
async fn bad_authorize_parameters_redirect_with_an_error() {
    let sandbox = sandbox().await;
    for (name, value, error) in [
        ("response_type", "token", "unsupported_response_type"),
        ("resource", "staging", "invalid_request"),
        ("scope", "transfer everything", "invalid_scope"),
        ("code_challenge_method", "S512", "invalid_request"),
    ] {
        let query = authorize_query(|p| {
            p.retain(|(k, _)| *k != name);
            p.push((name, value.to_owned()));
        });
        let (status, location) = authorize(&sandbox, Endpoint::VakifbankAuthorize, &query).await;
        assert_eq!(status, 302, "{name}");
        let (_, pairs) = location.unwrap();
        assert_eq!(param(&pairs, "error"), Some(error), "{name}");
    }
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_uri_is_not_redirected_to() {
    let sandbox = Sandbox::builder()
        .credentials(SandboxCredentials {
            vakifbank_redirect_uris: vec![REDIRECT_URI.to_owned()],
            ..SandboxCredentials::default()
        })
        .start()
        .await
        .unwrap();
    for query in [
        authorize_query(|p| p[0].1 = "stranger".into()),
        authorize_query(|p| p[3].1 = "https://attacker.example/cb".into()),
        authorize_query(|p| p.retain(|(k, _)| *k != "redirect_uri")),
    ] {
        let (status, location) = authorize(&sandbox, Endpoint::VakifbankAuthorize, &query).await;
        assert_eq!(status, 400, "{query}");
        assert!(location.is_none());
    }
}

#[tokio::test]
async fn the_authorization_code_grant_checks_the_redirect_uri_and_is_single_use() {
    let sandbox = sandbox().await;
    let first = code(&sandbox, &[]).await;
    let (status, body) = token(
        &sandbox,
        &[
            ("grant_type", "authorization_code"),
            ("code", &first),
            ("redirect_uri", "http://127.0.0.1:8765/other"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let second = code(&sandbox, &[]).await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", second.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let (status, body) = token(&sandbox, &grant).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "transfer");
    assert!(body["refresh_token"].is_string());
    let (status, body) = token(&sandbox, &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn pkce_s256_is_checked_when_a_challenge_was_sent() {
    let sandbox = sandbox().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    for wrong in [None, Some("another-verifier-another-verifier-another-1")] {
        let code = code(&sandbox, &pkce).await;
        let mut grant = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ];
        grant.extend(wrong.map(|w| ("code_verifier", w)));
        let (status, body) = token(&sandbox, &grant).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }

    let code = code(&sandbox, &pkce).await;
    let (status, body) = token(
        &sandbox,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let sandbox = sandbox().await;
    let code = code(&sandbox, &[]).await;
    let (_, first) = token(
        &sandbox,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let refresh = |refresh_token: &str| {
        let refresh_token = refresh_token.to_owned();
        let sandbox = &sandbox;
        async move {
            token(
                sandbox,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                    ("scope", "transfer"),
                ],
            )
            .await
        }
    };
    let (status, second) = refresh(first_refresh).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let (status, body) = refresh(first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh(second_refresh).await.0, 200);
}

#[tokio::test]
async fn client_credentials_accept_the_body_or_basic_auth_but_not_both() {
    let sandbox = sandbox().await;
    let (status, body) = token(
        &sandbox,
        &[("grant_type", "client_credentials"), ("scope", "oob")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "oob");
    assert!(body.get("refresh_token").is_none());

    let authorization = basic(
        defaults::VAKIFBANK_CLIENT_ID,
        defaults::VAKIFBANK_CLIENT_SECRET,
    );
    let grant = [("grant_type", "client_credentials"), ("scope", "public")];
    let (status, _) = status_json(
        post_form(
            &sandbox,
            Endpoint::VakifbankToken,
            Some(&authorization),
            &grant,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);

    let both = [
        ("grant_type", "client_credentials"),
        ("client_secret", defaults::VAKIFBANK_CLIENT_SECRET),
    ];
    let (status, body) = status_json(
        post_form(
            &sandbox,
            Endpoint::VakifbankToken,
            Some(&authorization),
            &both,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn b2b_credentials_need_the_consent_id() {
    let sandbox = sandbox().await;
    let (status, body) = token(
        &sandbox,
        &[("grant_type", "b2b_credentials"), ("scope", "account")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = token(
        &sandbox,
        &[
            ("grant_type", "b2b_credentials"),
            ("consentId", "someone-elses"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = token(
        &sandbox,
        &[
            ("grant_type", "b2b_credentials"),
            ("consentId", defaults::VAKIFBANK_CONSENT_ID),
            ("resource", "sandbox"),
            ("scope", "account"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "account");
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn invalid_client_carries_x_ca_err_and_is_401_or_400_as_configured() {
    let sandbox = sandbox().await;
    let grant = [
        ("grant_type", "client_credentials"),
        ("client_id", defaults::VAKIFBANK_CLIENT_ID),
        ("client_secret", "wrong"),
    ];
    let response = post_form(&sandbox, Endpoint::VakifbankToken, None, &grant).await;
    assert_eq!(response.headers()["x-ca-err"], "3003201");
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(body["error_description"].is_string());

    let wrong_basic = basic(defaults::VAKIFBANK_CLIENT_ID, "wrong");
    let response = post_form(
        &sandbox,
        Endpoint::VakifbankToken,
        Some(&wrong_basic),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));

    sandbox.update_behaviour(|b| b.vakifbank_invalid_client_status = 400);
    let response = post_form(&sandbox, Endpoint::VakifbankToken, None, &grant).await;
    assert_eq!(response.headers()["x-ca-err"], "3003201");
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let sandbox = sandbox().await;
    let response = post_form(
        &sandbox,
        Endpoint::VakifbankToken,
        None,
        &[("grant_type", "password")],
    )
    .await;
    assert!(
        response.headers()["x-ca-err"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let (status, body) = status_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn expires_in_can_be_sent_as_a_numeric_string() {
    let sandbox = sandbox().await;
    sandbox.update_behaviour(|b| b.expires_in_as_string = true);
    let (_, body) = token(&sandbox, &[("grant_type", "client_credentials")]).await;
    assert_eq!(body["expires_in"], "3600");
}

#[tokio::test]
async fn a_strict_gateway_takes_client_credentials_only_where_it_is_told() {
    use payauth_sandbox::ClientAuthCheck;
    let sandbox = sandbox().await;
    let (id, secret) = (
        defaults::VAKIFBANK_CLIENT_ID,
        defaults::VAKIFBANK_CLIENT_SECRET,
    );
    let grant = [("grant_type", "client_credentials"), ("scope", "public")];
    let in_body = [
        grant[0],
        grant[1],
        ("client_id", id),
        ("client_secret", secret),
    ];
    let header = basic(id, secret);
    for (check, body_status, basic_status) in [
        (ClientAuthCheck::Either, 200, 200),
        (ClientAuthCheck::BodyOnly, 200, 401),
        (ClientAuthCheck::BasicOnly, 401, 200),
    ] {
        sandbox.update_behaviour(|b| b.vakifbank_client_auth = check);
        let body = post_form(&sandbox, Endpoint::VakifbankToken, None, &in_body).await;
        let with_basic = post_form(&sandbox, Endpoint::VakifbankToken, Some(&header), &grant).await;
        let challenged = with_basic.headers().contains_key("www-authenticate");
        let (body, (status, answer)) = (status_json(body).await, status_json(with_basic).await);
        assert_eq!(body.0, body_status, "{check:?} body: {}", body.1);
        assert_eq!(status, basic_status, "{check:?} basic: {answer}");
        if status == 401 {
            assert_eq!(answer["error"], "invalid_client");
            assert!(!challenged, "a body-only gateway asks for no Basic");
        }
    }
}

/// A valid request of `grant` (a fresh code or refresh token when it needs
/// one), credentials in the body, without `resource`.
async fn grant_request(sandbox: &RunningSandbox, grant: &str) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("grant_type", grant.to_owned())];
    match grant {
        "authorization_code" => {
            pairs.push(("code", code(sandbox, &[]).await));
            pairs.push(("redirect_uri", REDIRECT_URI.to_owned()));
        }
        "refresh_token" => {
            let code = code(sandbox, &[]).await;
            let mut exchange = vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
            ];
            // The exchange that gets the refresh token passes the check.
            if sandbox.behaviour().vakifbank_resource == payauth_sandbox::ResourceCheck::Required {
                exchange.push(("resource", "sandbox"));
            }
            let (_, body) = token(sandbox, &exchange).await;
            pairs.push((
                "refresh_token",
                body["refresh_token"].as_str().unwrap().to_owned(),
            ));
        }
        "b2b_credentials" => pairs.push(("consentId", defaults::VAKIFBANK_CONSENT_ID.to_owned())),
        _ => {}
    }
    pairs.push(("client_id", defaults::VAKIFBANK_CLIENT_ID.to_owned()));
    pairs.push((
        "client_secret",
        defaults::VAKIFBANK_CLIENT_SECRET.to_owned(),
    ));
    pairs
}

#[tokio::test]
async fn every_grant_reads_resource_as_the_plan_a_required_plan_or_an_rfc_8707_indicator() {
    use payauth_sandbox::ResourceCheck::{Plan, Required, Rfc8707};
    let sandbox = sandbox().await;
    let uri = "https://apigw.vakifbank.com.tr/account";
    // What each mode answers to no resource, the plans, a bogus word, a
    // URI, and a URI with a fragment: 200 or the refusal's `error`.
    let cases: [(_, [&str; 6]); 3] = [
        (
            Plan,
            [
                "ok",
                "ok",
                "ok",
                "invalid_request",
                "invalid_request",
                "invalid_request",
            ],
        ),
        (
            Required,
            [
                "invalid_request",
                "ok",
                "ok",
                "invalid_request",
                "invalid_request",
                "invalid_request",
            ],
        ),
        (
            Rfc8707,
            [
                "ok",
                "invalid_target",
                "invalid_target",
                "invalid_target",
                "ok",
                "invalid_target",
            ],
        ),
    ];
    let resources = [
        None,
        Some("sandbox"),
        Some("production"),
        Some("bogus"),
        Some(uri),
        Some("https://x/#frag"),
    ];
    assert_eq!(
        sandbox.behaviour().vakifbank_resource,
        Plan,
        "the plan check is the default"
    );
    for (check, expected) in cases {
        sandbox.update_behaviour(|b| b.vakifbank_resource = check);
        for grant in GRANTS {
            for (resource, expected) in resources.iter().zip(expected) {
                let mut pairs = grant_request(&sandbox, grant).await;
                if let Some(resource) = resource {
                    pairs.push(("resource", (*resource).to_owned()));
                }
                let pairs: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let response = post_form(&sandbox, Endpoint::VakifbankToken, None, &pairs).await;
                let ca_err = response.headers().contains_key("x-ca-err");
                let (status, body) = status_json(response).await;
                let case = format!("{check:?} {grant} {resource:?}: {body}");
                if expected == "ok" {
                    assert_eq!(status, 200, "{case}");
                } else {
                    assert_eq!(
                        (status, body["error"].as_str()),
                        (400, Some(expected)),
                        "{case}"
                    );
                    assert!(ca_err, "{case}: the gateway's error shape");
                }
            }
        }
    }
}

/// Every grant the token endpoint knows.
const GRANTS: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "b2b_credentials",
];

#[tokio::test]
async fn the_documented_code_exchange_without_client_credentials_is_taken_only_when_told() {
    let sandbox = sandbox().await;
    let exchange = |code: String| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", REDIRECT_URI.to_owned()),
        ]
    };
    let send = |pairs: Vec<(&'static str, String)>| {
        let sandbox = &sandbox;
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            status_json(post_form(sandbox, Endpoint::VakifbankToken, None, &pairs).await).await
        }
    };
    let (status, body) = send(exchange(code(&sandbox, &[]).await)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    sandbox.update_behaviour(|b| b.vakifbank_public_exchange = true);
    let (status, body) = send(exchange(code(&sandbox, &[]).await)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    // Credentials that are sent are still checked, and only the exchange
    // goes without them.
    let mut wrong = exchange(code(&sandbox, &[]).await);
    wrong.push(("client_id", defaults::VAKIFBANK_CLIENT_ID.to_owned()));
    wrong.push(("client_secret", "wrong".to_owned()));
    assert_eq!(send(wrong).await.0, 401);
    let (status, _) = send(vec![("grant_type", "client_credentials".to_owned())]).await;
    assert_eq!(status, 401);
}
