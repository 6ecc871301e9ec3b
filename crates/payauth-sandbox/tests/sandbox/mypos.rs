//! myPOS client credentials and revocation.

use payauth_core::Secret;
use payauth_core::oauth2::BasicEncoding;
use payauth_sandbox::{Behaviour, Endpoint, RunningSandbox, Sandbox, SandboxCredentials, defaults};
use serde_json::Value;

use crate::common::{basic, post_form, sandbox, status_json};

fn client_basic() -> String {
    basic(defaults::MYPOS_CLIENT_ID, defaults::MYPOS_CLIENT_SECRET)
}

async fn token(sandbox: &RunningSandbox, authorization: &str) -> (u16, Value) {
    status_json(
        post_form(
            sandbox,
            Endpoint::MyposToken,
            Some(authorization),
            &[("grant_type", "client_credentials"), ("scope", "webhooks")],
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn a_client_credentials_token_is_issued_for_basic_auth() {
    let sandbox = sandbox().await;
    let (status, body) = token(&sandbox, &client_basic()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], "webhooks");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    // Without a scope asked for, none is echoed.
    let (status, body) = status_json(
        post_form(
            &sandbox,
            Endpoint::MyposToken,
            Some(&client_basic()),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("scope").is_none());
}

#[tokio::test]
async fn basic_credentials_are_read_plain_as_mypos_documents_or_per_rfc_6749_when_told() {
    let secret = "p@ss:w%rd+1 x";
    let raw = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{secret}", defaults::MYPOS_CLIENT_ID)
        )
    );
    let encoded = basic(defaults::MYPOS_CLIENT_ID, secret);
    for (decoding, passes, fails) in [
        (BasicEncoding::Plain, &raw, &encoded),
        (BasicEncoding::Rfc6749, &encoded, &raw),
    ] {
        let sandbox = Sandbox::builder()
            .credentials(SandboxCredentials {
                mypos_client_secret: Secret::new(secret),
                ..SandboxCredentials::default()
            })
            .behaviour(Behaviour {
                mypos_basic: decoding,
                ..Behaviour::default()
            })
            .start()
            .await
            .unwrap();
        assert_eq!(token(&sandbox, passes).await.0, 200, "{decoding}");
        // The other encoding turns `+` into a space, or leaves `%3A`: the
        // secret does not match.
        assert_eq!(token(&sandbox, fails).await.0, 401, "{decoding}");
    }
    assert_eq!(Behaviour::default().mypos_basic, BasicEncoding::Plain);
}

#[tokio::test]
async fn bad_credentials_are_refused_with_401_invalid_client() {
    let sandbox = sandbox().await;
    let semicolon = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{};{}",
                defaults::MYPOS_CLIENT_ID,
                defaults::MYPOS_CLIENT_SECRET
            )
        )
    );
    for authorization in [basic(defaults::MYPOS_CLIENT_ID, "wrong"), semicolon] {
        let (status, body) = token(&sandbox, &authorization).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    let (status, body) = status_json(
        post_form(
            &sandbox,
            Endpoint::MyposToken,
            None,
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let sandbox = sandbox().await;
    let (status, body) = status_json(
        post_form(
            &sandbox,
            Endpoint::MyposToken,
            Some(&client_basic()),
            &[("grant_type", "password")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn revocation_answers_200_for_any_token_and_remembers_revoked_ones() {
    let sandbox = sandbox().await;
    let (_, body) = token(&sandbox, &client_basic()).await;
    let access_token = body["access_token"].as_str().unwrap();
    assert!(!sandbox.is_revoked(access_token));

    for revoked in [access_token, "never-issued"] {
        let response = post_form(
            &sandbox,
            Endpoint::MyposRevoke,
            Some(&client_basic()),
            &[("token", revoked), ("token_type_hint", "access_token")],
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    assert!(sandbox.is_revoked(access_token));
    assert!(!sandbox.is_revoked("never-issued"));

    let response = post_form(
        &sandbox,
        Endpoint::MyposRevoke,
        Some(&basic(defaults::MYPOS_CLIENT_ID, "wrong")),
        &[("token", access_token)],
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_scope_the_docs_do_not_name_is_refused_as_invalid_scope_and_not_echoed() {
    let sandbox = sandbox().await;
    let ask = |scope: &'static str| {
        let sandbox = &sandbox;
        async move {
            status_json(
                post_form(
                    sandbox,
                    Endpoint::MyposToken,
                    Some(&client_basic()),
                    &[("grant_type", "client_credentials"), ("scope", scope)],
                )
                .await,
            )
            .await
        }
    };
    for scope in ["admin", "webhooks admin", "WEBHOOKS", "webhooks,payments"] {
        let (status, body) = ask(scope).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{scope}: {body}"
        );
        assert!(body.get("scope").is_none() && body.get("access_token").is_none());
    }
    let (status, body) = ask("webhooks").await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("webhooks")));

    // An empty list of known scopes grants any.
    let lax = Sandbox::builder()
        .credentials(SandboxCredentials {
            mypos_scopes: Vec::new(),
            ..SandboxCredentials::default()
        })
        .start()
        .await
        .unwrap();
    let (status, body) = status_json(
        post_form(
            &lax,
            Endpoint::MyposToken,
            Some(&client_basic()),
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await,
    )
    .await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("admin")));
}
