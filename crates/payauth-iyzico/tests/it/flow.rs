//! The iyzico flows against httpmock: Terminal API login through the cache
//! (login, refresh, rotated refresh token, refused refresh, login again)
//! and the Pay-with-iyzico token with its failure envelope.

use std::sync::Arc;

use base64::Engine as _;
use httpmock::prelude::*;
use payauth_core::{Environment, ErrorKind, Secret, TokenCache};
use payauth_iyzico::{Pwi, PwiSettings, TerminalLogin, TerminalLoginSettings, TimestampUnit};

const SENTINEL: &str = "SENTINEL-iyzico-pw-8d";
const PWI_PATH: &str = "/v1/pay-with-iyzico/third-party-session/retrieve/access-token";

fn login(server: &MockServer, unit: TimestampUnit) -> TerminalLogin {
    let mut settings = TerminalLoginSettings::new(
        "client",
        Secret::new("secret"),
        "cashier",
        Secret::new(SENTINEL),
        Environment::Custom(server.base_url()),
    );
    settings.timestamp_unit = unit;
    TerminalLogin::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap()
}

fn json(then: httpmock::Then, status: u16, body: &str) -> httpmock::Then {
    then.status(status)
        .header("content-type", "application/json")
        .body(body)
}

#[tokio::test]
async fn login_refresh_rotation_refused_refresh_and_login_again() {
    let server = MockServer::start_async().await;
    let authorize = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize").body_includes("username=cashier");
            json(then, 200, r#"{"code":"code-1","issuedAt":"2025-06-04T10:00:00+03:00","expiredAt":"2025-06-04T10:10:00+03:00"}"#);
        })
        .await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token").header("authorization", "Basic Y2xpZW50OnNlY3JldA==").body("code=code-1&grant_type=authorization_code");
            json(then, 200, r#"{"access_token":"at-1","refresh_token":"rt-1","scope":"iyzipayApiGateway","token_type":"Bearer","expires_in":7199}"#);
        })
        .await;
    let refresh_1 = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token/refresh").body("grant_type=refresh_token&refresh_token=rt-1");
            json(then, 200, r#"{"access_token":"at-2","refresh_token":"rt-2","token_type":"Bearer","expires_in":7199}"#);
        })
        .await;
    let refresh_2 = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/in-store/oauth2/token/refresh")
                .body("grant_type=refresh_token&refresh_token=rt-2");
            json(then, 400, r#"{"error":"invalid_grant"}"#);
        })
        .await;

    let cache = TokenCache::builder(login(&server, TimestampUnit::Milliseconds)).build();
    let first = cache.token().await.unwrap();
    assert_eq!(first.secret().expose_secret(), "at-1");
    assert!(cache.invalidate(&first));
    let second = cache.token().await.unwrap();
    assert_eq!(
        second.secret().expose_secret(),
        "at-2",
        "refreshed with rt-1"
    );
    // A second rejection at once would be inside the renewal window.
    assert!(cache.forget(&second).await.unwrap());
    let third = cache.token().await.unwrap();
    assert_eq!(
        third.secret().expose_secret(),
        "at-1",
        "rt-2 refused: logged in again"
    );

    assert_eq!(authorize.calls_async().await, 2);
    assert_eq!(token.calls_async().await, 2);
    assert_eq!(refresh_1.calls_async().await, 1);
    assert_eq!(
        refresh_2.calls_async().await,
        1,
        "the rotated refresh token was the one used next"
    );
}

#[tokio::test]
async fn request_timestamp_is_milliseconds_by_default_and_seconds_when_configured() {
    for (unit, digits) in [
        (TimestampUnit::Milliseconds, 13),
        (TimestampUnit::Seconds, 10),
    ] {
        let server = MockServer::start_async().await;
        let pattern = format!("request_timestamp=[0-9]{{{digits}}}&");
        let mock = server
            .mock_async(|when, then| {
                when.method(POST)
                    .path("/in-store/oauth2/authorize")
                    .body_matches(pattern.as_str());
                json(then, 200, r#"{"code":"c"}"#);
            })
            .await;
        login(&server, unit).authorize().await.unwrap();
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn an_authorize_error_keeps_iyzicos_code_and_never_the_password() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(then, 400, r#"{"errorCode":"unsupported_response_type","description":"OAuth 2.0 Parameter: response_type","uri":""}"#);
        })
        .await;
    let error = login(&server, TimestampUnit::Milliseconds)
        .login()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Provider);
    assert_eq!(error.provider_code(), Some("unsupported_response_type"));
    assert!(!format!("{error} {error:?}").contains(SENTINEL));
}

#[tokio::test]
async fn a_numeric_authorize_error_code_is_kept_not_a_malformed_answer() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(
                then,
                401,
                r#"{"errorCode":1001,"description":"api key not found"}"#,
            );
        })
        .await;
    let error = login(&server, TimestampUnit::Milliseconds)
        .login()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClient, "{error}");
    assert_eq!(error.provider_code(), Some("1001"));
}

#[tokio::test]
async fn a_token_type_other_than_bearer_is_refused_not_sent() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(then, 200, r#"{"code":"c"}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token");
            json(
                then,
                200,
                r#"{"access_token":"t","token_type":"Basic x,","expires_in":60}"#,
            );
        })
        .await;
    let error = login(&server, TimestampUnit::Milliseconds)
        .login()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
}

#[tokio::test]
async fn refused_client_credentials_on_token_are_invalid_client() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(then, 200, r#"{"code":"c"}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token");
            json(then, 401, r#"{"error":"invalid_client"}"#);
        })
        .await;
    let error = login(&server, TimestampUnit::Milliseconds)
        .login()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClient);
}

/// A token whose refresh token is `refresh_token`, as the cache hands a
/// stored one to the source after a restart.
fn held(refresh_token: &str) -> payauth_core::AccessToken {
    payauth_core::AccessToken::new(
        Secret::new("at-old"),
        "Bearer",
        payauth_core::Issued::now(&payauth_core::SystemClock),
        std::time::Duration::from_secs(60),
    )
    .unwrap()
    .with_refresh_token(Some(Secret::new(refresh_token)))
}

/// A server whose login works (`at-new`) and whose refresh answers
/// `status` with `body`; the mocks' call counts are (authorize, refresh).
async fn refresh_answering<'a>(
    server: &'a MockServer,
    status: u16,
    body: &str,
) -> (httpmock::Mock<'a>, httpmock::Mock<'a>) {
    let authorize = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(then, 200, r#"{"code":"code-1"}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token");
            json(
                then,
                200,
                r#"{"access_token":"at-new","refresh_token":"rt-new","expires_in":7199}"#,
            );
        })
        .await;
    let refresh = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token/refresh");
            json(then, status, body);
        })
        .await;
    (authorize, refresh)
}

#[tokio::test]
async fn a_refresh_refused_in_any_way_but_a_transient_one_logs_in_again() {
    use payauth_core::TokenSource as _;
    let refusals = [
        (400, r#"{"error":"invalid_grant"}"#),
        (
            400,
            r#"{"error":"invalid_request","error_description":"refresh_token expired"}"#,
        ),
        (
            401,
            r#"{"status":"failure","errorCode":"10","errorMessage":"Token geçersiz"}"#,
        ),
        (401, r#"{"error":"invalid_token"}"#),
        (403, ""),
        (404, "<html>not here</html>"),
        (422, r#"{"errorCode":"260016"}"#),
        (
            200,
            r#"{"status":"failure","errorCode":"10051","errorMessage":"refresh token bulunamadı"}"#,
        ),
        (200, r#"{"error":"invalid_grant"}"#),
    ];
    for (status, body) in refusals {
        let server = MockServer::start_async().await;
        let (authorize, refresh) = refresh_answering(&server, status, body).await;
        let login = login(&server, TimestampUnit::Milliseconds);
        let token = login
            .fetch(Some(&held("rt-dead")))
            .await
            .unwrap_or_else(|e| panic!("{status} {body}: {e}"));
        assert_eq!(token.secret().expose_secret(), "at-new", "{status} {body}");
        assert_eq!(refresh.calls_async().await, 1, "{status} {body}");
        assert_eq!(authorize.calls_async().await, 1, "{status} {body}");
    }
}

#[tokio::test]
async fn a_transient_refresh_failure_is_returned_and_the_refresh_token_kept() {
    use payauth_core::TokenSource as _;
    for status in [429, 500, 503] {
        let server = MockServer::start_async().await;
        let (authorize, refresh) =
            refresh_answering(&server, status, r#"{"error":"invalid_grant"}"#).await;
        let login = login(&server, TimestampUnit::Milliseconds);
        let previous = held("rt-alive");
        for attempt in 1..=2 {
            let error = login.fetch(Some(&previous)).await.unwrap_err();
            assert!(error.is_transient(), "{status}: {error}");
            assert_eq!(
                refresh.calls_async().await,
                attempt,
                "{status}: tried again"
            );
        }
        assert_eq!(authorize.calls_async().await, 0, "{status}: no login");
    }
}

#[tokio::test]
async fn a_refresh_token_that_failed_for_good_is_never_sent_again() {
    use payauth_core::TokenSource as _;
    let server = MockServer::start_async().await;
    let authorize = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/authorize");
            json(then, 503, "");
        })
        .await;
    let refresh = server
        .mock_async(|when, then| {
            when.method(POST).path("/in-store/oauth2/token/refresh");
            json(
                then,
                401,
                r#"{"status":"failure","errorCode":"10","errorMessage":"x"}"#,
            );
        })
        .await;
    let login = login(&server, TimestampUnit::Milliseconds);
    let previous = held("rt-dead");
    for _ in 0..3 {
        let error = login.fetch(Some(&previous)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable, "the login's error");
    }
    assert_eq!(refresh.calls_async().await, 1);
    assert_eq!(authorize.calls_async().await, 3);
    // Another refresh token is tried.
    let _ = login.fetch(Some(&held("rt-other"))).await;
    assert_eq!(refresh.calls_async().await, 2);
}

#[tokio::test]
async fn an_authorize_200_that_says_failure_keeps_iyzicos_code_and_kind() {
    let cases = [
        (
            r#"{"errorCode":"invalid_client","description":"Client authentication failed","uri":""}"#,
            ErrorKind::InvalidClient,
            "invalid_client",
        ),
        (
            r#"{"status":"failure","errorCode":"1001","errorMessage":"api bilgileri bulunamadı"}"#,
            ErrorKind::InvalidClient,
            "1001",
        ),
        (
            r#"{"status":"failure","errorCode":"10051","errorMessage":"kullanıcı bulunamadı"}"#,
            ErrorKind::Provider,
            "10051",
        ),
        (r#"{"status":401,"errorCode":"5"}"#, ErrorKind::Refused, "5"),
    ];
    for (body, kind, code) in cases {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path("/in-store/oauth2/authorize");
                json(then, 200, body);
            })
            .await;
        let error = login(&server, TimestampUnit::Milliseconds)
            .authorize()
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.provider_code()),
            (kind, Some(code)),
            "{body}"
        );
        assert_eq!(
            error.is_permanent(),
            kind == ErrorKind::InvalidClient,
            "{body}"
        );
        assert!(!format!("{error} {error:?}").contains(SENTINEL));
    }
}

#[tokio::test]
async fn token_errors_are_read_in_iyzicos_envelope_at_any_status() {
    let cases = [
        (
            403,
            r#"{"status":"failure","errorCode":"1001","errorMessage":"api key bulunamadı"}"#,
            ErrorKind::InvalidClient,
            Some("1001"),
        ),
        (
            200,
            r#"{"status":"failure","errorCode":"1000","errorMessage":"Geçersiz imza"}"#,
            ErrorKind::InvalidClient,
            Some("1000"),
        ),
        (
            422,
            r#"{"errorCode":"260016","errorMessage":"x"}"#,
            ErrorKind::InvalidGrant,
            Some("260016"),
        ),
        (
            400,
            r#"{"error":"invalid_grant","error_description":"code used"}"#,
            ErrorKind::InvalidGrant,
            Some("invalid_grant"),
        ),
        (
            409,
            r#"{"errorCode":9999,"errorMessage":"other"}"#,
            ErrorKind::Provider,
            Some("9999"),
        ),
    ];
    for (status, body, kind, code) in cases {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path("/in-store/oauth2/authorize");
                json(then, 200, r#"{"code":"c"}"#);
            })
            .await;
        server
            .mock_async(|when, then| {
                when.method(POST).path("/in-store/oauth2/token");
                json(then, status, body);
            })
            .await;
        let error = login(&server, TimestampUnit::Milliseconds)
            .login()
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.provider_code()),
            (kind, code),
            "{status} {body}"
        );
        assert_eq!(error.status(), Some(status), "{body}");
    }
}

fn pwi(server: &MockServer) -> Pwi {
    let settings = PwiSettings::new(
        "api-key",
        Secret::new("secret-key"),
        Environment::Custom(server.base_url()),
    );
    Pwi::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A wall clock running `behind` the real one.
struct SlowClock {
    behind: std::time::Duration,
}

impl payauth_core::Clock for SlowClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    fn system_now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now() - self.behind
    }
}

/// The token's lifetime when iyzico answers `systemTime` (epoch ms, or
/// none) and a JWT expiring at `exp`, read by a client whose wall clock is
/// `behind` the real one.
async fn pwi_lifetime(system_time: Option<u64>, exp: u64, behind: u64) -> Result<u64, ErrorKind> {
    let server = MockServer::start_async().await;
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
    let system_time = system_time.map_or(String::new(), |ms| format!(r#""systemTime":{ms},"#));
    let body = format!(
        r#"{{"status":"success","locale":"tr",{system_time}"accessToken":"eyJhbGciOiJIUzI1NiJ9.{payload}.sig"}}"#
    );
    server
        .mock_async(|when, then| {
            when.method(POST).path(PWI_PATH);
            json(then, 200, &body);
        })
        .await;
    let clock = Arc::new(SlowClock {
        behind: std::time::Duration::from_secs(behind),
    });
    pwi(&server)
        .with_clock(clock)
        .access_token(Secret::new("s"), "m")
        .fetch_token()
        .await
        .map(|token| token.lifetime().as_secs())
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn pwi_token_lifetime_is_the_jwt_exp_counted_from_iyzicos_system_time() {
    let now = now_secs();
    let lifetime = pwi_lifetime(Some(now * 1000), now + 120, 0).await.unwrap();
    assert_eq!(lifetime, 120);
    // iyzico's clock, not ours: 60 s left by iyzico's time is 60 s.
    let lifetime = pwi_lifetime(Some((now - 100) * 1000), now - 40, 0)
        .await
        .unwrap();
    assert_eq!(lifetime, 60);
}

#[tokio::test]
async fn a_local_clock_running_slow_never_stretches_a_pwi_token() {
    let now = now_secs();
    // Ten minutes slow: exp − local time would be 11 minutes.
    let lifetime = pwi_lifetime(Some(now * 1000), now + 60, 600).await.unwrap();
    assert_eq!(lifetime, 60);
}

#[tokio::test]
async fn a_pwi_token_never_lives_past_the_documented_five_minutes() {
    let now = now_secs();
    assert_eq!(pwi_lifetime(Some(now * 1000), now + 3600, 0).await, Ok(300));
    // Without systemTime the local clock counts, capped all the same.
    assert_eq!(pwi_lifetime(None, now + 3600, 600).await, Ok(300));
    let lifetime = pwi_lifetime(None, now + 90, 0).await.unwrap();
    assert!((80..=90).contains(&lifetime), "{lifetime}");
}

#[tokio::test]
async fn absurd_pwi_times_are_an_error_or_capped_never_a_panic() {
    let now = now_secs();
    // Already expired by iyzico's own clock.
    assert_eq!(
        pwi_lifetime(Some(now * 1000), now - 1, 0).await,
        Err(ErrorKind::Malformed)
    );
    assert_eq!(
        pwi_lifetime(Some(u64::MAX / 2), now, 0).await,
        Err(ErrorKind::Malformed)
    );
    assert_eq!(pwi_lifetime(Some(0), u64::MAX, 0).await, Ok(300));
    assert_eq!(pwi_lifetime(Some(0), 0, 0).await, Err(ErrorKind::Malformed));
}

/// True when `req` carries an IYZWSv2 signature over `path` (not the path
/// the server received) and the exact body, with `x-iyzi-rnd`.
fn signed_over(req: &httpmock::HttpMockRequest, path: &str) -> bool {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(authorization), Some(random_key)) = (header("authorization"), header("x-iyzi-rnd"))
    else {
        return false;
    };
    let expected = payauth_iyzico::iyzwsv2::authorization(
        "api-key",
        &Secret::new("secret-key"),
        random_key,
        path,
        req.body_ref(),
    );
    expected.to_str().ok() == Some(authorization)
}

#[tokio::test]
async fn behind_a_base_url_with_a_path_pwi_signs_the_endpoint_path_as_the_sdks_do() {
    for prefix in ["/egress/iyzico", "/egress/iyzico/"] {
        let server = MockServer::start_async().await;
        let proxied = format!("/egress/iyzico{PWI_PATH}");
        let mock = server
            .mock_async(|when, then| {
                when.method(POST)
                    .path(proxied.as_str())
                    .is_true(|req| signed_over(req, PWI_PATH));
                json(then, 200, r#"{"status":"success","accessToken":"opaque"}"#);
            })
            .await;
        let settings = PwiSettings::new(
            "api-key",
            Secret::new("secret-key"),
            Environment::Custom(format!("{}{prefix}", server.base_url())),
        );
        Pwi::new(&settings, &payauth_core::http::default_client().unwrap())
            .unwrap()
            .access_token(Secret::new("s"), "m")
            .fetch_token()
            .await
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_conversation_id_is_sent_and_must_come_back() {
    for (echo, expected) in [
        (r#""conversationId":"order-7","#, Ok(())),
        (r#""conversationId":"order-8","#, Err(ErrorKind::Malformed)),
        ("", Err(ErrorKind::Malformed)),
    ] {
        let server = MockServer::start_async().await;
        let body = format!(r#"{{"status":"success",{echo}"accessToken":"opaque"}}"#);
        let mock = server
            .mock_async(|when, then| {
                when.method(POST)
                    .path(PWI_PATH)
                    .body_includes(r#""conversationId":"order-7""#);
                json(then, 200, &body);
            })
            .await;
        let outcome = pwi(&server)
            .access_token(Secret::new("s"), "m")
            .with_conversation_id("order-7")
            .fetch_token()
            .await;
        assert_eq!(
            outcome.map(|_| ()).map_err(|e| e.kind()),
            expected,
            "{echo}"
        );
        mock.assert_async().await;
    }
}

#[tokio::test]
async fn a_pwi_token_that_is_not_a_jwt_lives_the_documented_five_minutes() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(PWI_PATH);
            json(then, 200, r#"{"status":"success","accessToken":"opaque"}"#);
        })
        .await;
    let token = pwi(&server)
        .access_token(Secret::new("s"), "m")
        .fetch_token()
        .await
        .unwrap();
    assert_eq!(token.lifetime().as_secs(), 300);
}

#[tokio::test]
async fn a_200_carrying_status_failure_is_an_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(PWI_PATH);
            json(then, 200, r#"{"status":"failure","errorCode":"260016","errorMessage":"Session token bulunamadı.","locale":"tr","systemTime":1749027045713}"#);
        })
        .await;
    let error = pwi(&server)
        .access_token(Secret::new("s"), "m")
        .fetch_token()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidGrant);
    assert_eq!(error.provider_code(), Some("260016"));
    assert_eq!(error.description(), Some("Session token bulunamadı."));
}

#[tokio::test]
async fn pwi_failure_envelopes_map_to_kinds_whatever_the_http_status() {
    let cases = [
        (
            401,
            r#"{"status":"failure","errorCode":"1000","errorMessage":"Geçersiz imza"}"#,
            ErrorKind::InvalidClient,
            "1000",
        ),
        (
            401,
            r#"{"status":"failure","errorCode":"1001","errorMessage":"api key bulunamadı"}"#,
            ErrorKind::InvalidClient,
            "1001",
        ),
        (
            400,
            r#"{"status":"failure","errorCode":"260016","errorMessage":"x"}"#,
            ErrorKind::InvalidGrant,
            "260016",
        ),
        (
            // A code payauth does not know is no verdict on the keys.
            401,
            r#"{"status":401,"errorCode":"5","errorMessage":"unauthorized"}"#,
            ErrorKind::Refused,
            "5",
        ),
        (
            400,
            r#"{"status":"failure","errorCode":"9999","errorMessage":"other"}"#,
            ErrorKind::Provider,
            "9999",
        ),
    ];
    for (status, body, kind, code) in cases {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path(PWI_PATH);
                json(then, status, body);
            })
            .await;
        let error = pwi(&server)
            .access_token(Secret::new("s"), "m")
            .fetch_token()
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.provider_code()),
            (kind, Some(code)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_pwi_session_is_a_token_source_for_the_cache() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(PWI_PATH)
                .body_includes(r#""memberIdentifier":"member-1""#);
            json(then, 200, r#"{"status":"success","accessToken":"opaque"}"#);
        })
        .await;
    let cache = TokenCache::builder(Arc::new(
        pwi(&server).access_token(Secret::new("s"), "member-1"),
    ))
    .build();
    cache.token().await.unwrap();
    cache.token().await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn every_iyzico_request_on_the_wire_is_exactly_this() {
    let server = MockServer::start_async().await;
    let (seen, record) = payauth_testkit::wire_recorder();
    let record = std::sync::Arc::new(record);
    for (path, body) in [
        ("/in-store/oauth2/authorize", r#"{"code":"code-1"}"#),
        (
            "/in-store/oauth2/token",
            r#"{"access_token":"at","refresh_token":"rt-1","expires_in":7199}"#,
        ),
        (
            "/in-store/oauth2/token/refresh",
            r#"{"access_token":"at","refresh_token":"rt-2","expires_in":7199}"#,
        ),
        (PWI_PATH, r#"{"status":"success","accessToken":"opaque"}"#),
    ] {
        let record = std::sync::Arc::clone(&record);
        server
            .mock_async(move |when, then| {
                when.method(POST).path(path).is_true(move |req| record(req));
                json(then, 200, body);
            })
            .await;
    }
    let login = login(&server, TimestampUnit::Milliseconds);
    let token = login.login().await.unwrap();
    login.refresh(token.refresh_token().unwrap()).await.unwrap();
    pwi(&server)
        .access_token(Secret::new("session-1"), "Şükrü")
        .fetch_token()
        .await
        .unwrap();

    let authorize =
        payauth_testkit::redact_form_field(&payauth_testkit::nth(&seen, 0), "request_timestamp");
    insta::assert_snapshot!("terminal_authorize", authorize);
    insta::assert_snapshot!("terminal_token", payauth_testkit::nth(&seen, 1));
    insta::assert_snapshot!("terminal_refresh", payauth_testkit::nth(&seen, 2));
    let signed = payauth_testkit::redact_headers(
        &payauth_testkit::nth(&seen, 3),
        &["authorization", "x-iyzi-rnd"],
    );
    insta::assert_snapshot!("pwi_access_token", signed);
}
