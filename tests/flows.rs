//! The config of each provider flow that fetches a token with no browser,
//! against a base URL: one table for every sweep over flows (the fault
//! matrix in `it/faults.rs`, mutual TLS in `tls.rs`). A module of both
//! test binaries.

// Each binary uses part of it.
#![allow(dead_code)]

use payauth_sandbox::defaults;

/// A config for each provider's token flow, against `base`.
pub(crate) fn configs(base: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "mypos",
            format!(
                "[source]\nprovider = \"mypos\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\n",
                defaults::MYPOS_CLIENT_ID,
                defaults::MYPOS_CLIENT_SECRET
            ),
        ),
        (
            "vakifbank",
            format!(
                "[source]\nprovider = \"vakifbank\"\nflow = \"client_credentials\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\nscopes = [\"public\"]\n",
                defaults::VAKIFBANK_CLIENT_ID,
                defaults::VAKIFBANK_CLIENT_SECRET
            ),
        ),
        (
            "iyzico-terminal",
            format!(
                "[source]\nprovider = \"iyzico-terminal\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\nusername = \"{}\"\npassword = {{ value = \"{}\" }}\n",
                defaults::IYZICO_CLIENT_ID,
                defaults::IYZICO_CLIENT_SECRET,
                defaults::IYZICO_USERNAME,
                defaults::IYZICO_PASSWORD
            ),
        ),
        (
            "iyzico-pwi",
            format!(
                "[source]\nprovider = \"iyzico-pwi\"\nenvironment = \"{base}\"\napi_key = \"{}\"\nsecret_key = {{ value = \"{}\" }}\nsession_token = {{ value = \"{}\" }}\nmember_identifier = \"{}\"\n",
                defaults::IYZICO_API_KEY,
                defaults::IYZICO_SECRET_KEY,
                defaults::PWI_SESSION_TOKEN,
                defaults::PWI_MEMBER_IDENTIFIER
            ),
        ),
    ]
}

/// The VakıfBank B2B grant (a consent id), against `base`: a flow of its
/// own, not in [`configs`] (whose order seeds the fault matrix's draws).
pub(crate) fn vakifbank_b2b(base: &str) -> (&'static str, String) {
    (
        "vakifbank b2b",
        format!(
            "[source]\nprovider = \"vakifbank\"\nflow = \"b2b_credentials\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\nconsent_id = \"{}\"\n",
            defaults::VAKIFBANK_CLIENT_ID,
            defaults::VAKIFBANK_CLIENT_SECRET,
            defaults::VAKIFBANK_CONSENT_ID
        ),
    )
}
