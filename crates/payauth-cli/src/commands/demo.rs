//! `payauth demo`: every provider flow against the loopback sandbox.

use super::Output;

pub(crate) fn run(output: Output) {
    if output.json {
        println!(r#"{{"status":"not yet","reason":"the loopback sandbox has not landed"}}"#);
    } else {
        println!("payauth demo: not yet — the loopback sandbox (payauth-sandbox) has not landed.");
        println!("The provider clients are generated from specs/; see README.md.");
    }
}
