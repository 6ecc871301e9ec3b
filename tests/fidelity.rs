//! What the vendors' servers do, end to end against the sandbox: each
//! provider's client, in each setting payauth offers for a guess, against
//! a sandbox told to behave each way the vendor might.

use payauth::core::oauth2::BasicEncoding;
use payauth::core::{Environment, ErrorKind, FlowSettings, Secret};
use payauth::iyzico::TerminalLoginSettings;
use payauth::mypos::MyposSettings;
use payauth::vakifbank::{ClientAuthStyle, ClientCredentialsSettings, VakifBankSettings};
use payauth_sandbox::{Behaviour, RunningSandbox, Sandbox, SandboxCredentials, defaults};

/// A secret holding every character the two Basic encodings write
/// differently.
const HOSTILE: &str = "s+e/c=r%t:x y";

const ENCODINGS: [BasicEncoding; 2] = [BasicEncoding::Plain, BasicEncoding::Rfc6749];

fn http() -> reqwest::Client {
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
