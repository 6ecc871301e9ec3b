//! `payauth sandbox`: serves the loopback simulators of all four provider
//! APIs until interrupted, for trying flows with `--environment <URL>` or curl.

use std::net::{Ipv4Addr, SocketAddr};

use payauth_sandbox::defaults;

pub(crate) fn run(port: u16) -> Result<(), String> {
    let runtime = super::runtime()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    println!("payauth sandbox on http://{addr} (Ctrl-C to stop)");
    println!(
        "  iyzico terminal client id {}, user {}",
        defaults::IYZICO_CLIENT_ID,
        defaults::IYZICO_USERNAME
    );
    println!(
        "  iyzico api key {}, PWI session for member {}",
        defaults::IYZICO_API_KEY,
        defaults::PWI_MEMBER_IDENTIFIER
    );
    println!(
        "  vakifbank client id {}, consent {}",
        defaults::VAKIFBANK_CLIENT_ID,
        defaults::VAKIFBANK_CONSENT_ID
    );
    println!("  mypos client id {}", defaults::MYPOS_CLIENT_ID);
    println!("  (secrets: payauth_sandbox::defaults in the docs)");
    runtime.block_on(async {
        tokio::select! {
            served = payauth_sandbox::serve(addr) => served.map_err(|e| format!("sandbox on {addr} failed: {e}")),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
