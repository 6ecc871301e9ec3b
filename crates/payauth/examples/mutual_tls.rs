//! Mutual TLS: a client certificate and key (PEM, the key a `Secret`)
//! shown to a gateway that requires one, as bank API gateways do for
//! production access.
//!
//! Runs on loopback with no network: a CA made here (rcgen) signs the
//! gateway's and the client's certificates, and the sandbox serves HTTPS
//! and requires a client certificate that CA signed
//! (`SandboxBuilder::tls` and `client_ca`; on the command line, `payauth
//! sandbox --tls-cert F --tls-key F --client-ca F`).
//!
//! `cargo run -p payauth --example mutual_tls --features mypos,rustls-ring`
//!
//! In production, the identity comes from files or the environment:
//! `ClientIdentity::from_pem(std::fs::read("client-chain.pem")?,
//! Secret::from_file("client-key.pem")?)`, or a config file's
//! `[http] identity`.

use payauth::core::http::{ClientIdentity, HttpClient};
use payauth::core::{Environment, Secret};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One CA for the gateway's certificate and the client's.
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let gateway_key = KeyPair::generate()?;
    let gateway =
        CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&gateway_key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["merchant-client".to_owned()])?
        .signed_by(&client_key, &issuer)?;

    // The gateway: HTTPS with its certificate, and only clients the CA
    // signed get past the TLS handshake.
    let sandbox = Sandbox::builder()
        .tls(gateway.pem(), gateway_key.serialize_pem())
        .client_ca(ca.pem())
        .start()
        .await?;
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(format!("https://localhost:{}", sandbox.addr().port())),
    );

    let identity = ClientIdentity::from_pem(client.pem(), Secret::new(client_key.serialize_pem()));
    println!("{identity:?}"); // the key is never shown
    let http = HttpClient::builder()
        .add_root_certificate(ca.der().to_vec())
        .identity(identity)
        .build()?;
    let token = Mypos::new(&settings, &http)?.fetch_token().await?;
    println!(
        "with the client certificate: a {} token",
        token.token_type()
    );

    let anonymous = HttpClient::builder()
        .add_root_certificate(ca.der().to_vec())
        .build()?;
    let refused = Mypos::new(&settings, &anonymous)?.fetch_token().await;
    match refused {
        Err(error) => println!("without it ({:?}): {error}", error.kind()),
        Ok(_) => return Err("the gateway served a client without a certificate".into()),
    }
    sandbox.shutdown().await;
    Ok(())
}
