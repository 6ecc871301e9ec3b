//! TLS to PostgreSQL (feature `tls`): `sslmode=require` never falls back to
//! plain TCP, checks the server's certificate, and works against the test
//! server once it is given a certificate from a CA generated here.

use payauth_core::{AccessToken, ErrorKind, Issued, ManualClock, Secret, StoredToken, TokenStore};
use payauth_postgres::PostgresStore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::support::Postgres;

fn with_sslmode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

/// One test: it turns TLS on and off on the shared server (other tests'
/// plain connections are not affected by `ssl = on`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_speaks_tls_with_a_checked_certificate_and_never_falls_back_to_plain() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let clock = ManualClock::new();
    let stored = StoredToken::from_token(
        &AccessToken::new(
            Secret::new("a-tls"),
            "Bearer",
            Issued::now(&clock),
            std::time::Duration::from_secs(600),
        )
        .unwrap(),
    );
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let required = Secret::new(with_sslmode(&postgres.url, "require"));

    // Without TLS on the server: refused, never plain.
    let error = PostgresStore::open_with_roots(&required, &[ca.der().to_vec()])
        .unwrap()
        .with_prefix(postgres.prefix.clone())
        .load("k")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");

    // The server given the certificate.
    let settings = admin(&postgres.url).await;
    serve_tls(&settings, &server.pem(), &server_key.serialize_pem()).await;

    let (ca_der, prefix, url) = (
        ca.der().to_vec(),
        postgres.prefix.clone(),
        postgres.url.clone(),
    );
    let outcome = async move {
        // Trusting the CA: a round trip over TLS.
        let store = PostgresStore::open_with_roots(&required, &[ca_der])
            .unwrap()
            .with_prefix(prefix.clone());
        store.save("k", &stored).await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(stored.clone()));
        // The server sees a TLS connection from the store (its pool keeps
        // it open while `store` lives).
        let tls: i64 = admin(&url)
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
                 WHERE ssl AND application_name = 'payauth'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(tls >= 1, "no TLS connection from the store");
        // Not trusting it: refused, never plain.
        let error = PostgresStore::open(&required)
            .unwrap()
            .with_prefix(prefix)
            .load("k")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store, "{error}");
    };
    let result = tokio::spawn(outcome).await;
    for statement in [
        "ALTER SYSTEM RESET ssl",
        "ALTER SYSTEM RESET ssl_cert_file",
        "ALTER SYSTEM RESET ssl_key_file",
        "SELECT pg_reload_conf()",
    ] {
        settings.batch_execute(statement).await.unwrap();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// Turns TLS on in the server with this certificate and key, written to
/// its data folder (owned by its user, as PostgreSQL requires of a key).
async fn serve_tls(settings: &tokio_postgres::Client, cert: &str, key: &str) {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir: String = settings
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let owner = std::fs::metadata(&dir).unwrap();
    let cert_path = format!("{dir}/payauth-test.crt");
    let key_path = format!("{dir}/payauth-test.key");
    for (path, pem) in [(&cert_path, cert), (&key_path, key)] {
        std::fs::write(path, pem).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    for statement in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{cert_path}'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{key_path}'"),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        settings.batch_execute(&statement).await.unwrap();
    }
    // The reload reaches new connections at once; wait until it has.
    for _ in 0..50 {
        let on: String = settings.query_one("SHOW ssl", &[]).await.unwrap().get(0);
        if on == "on" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A plain connection of the test's own, for the server's settings.
async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}
