//! Properties that hold for any input: the signer and every generated
//! response type never panic, whatever bytes arrive.

use payauth_core::Secret;
use payauth_iyzico::generated::{pwi, terminal_login};
use payauth_iyzico::iyzwsv2;
use proptest::prelude::*;

proptest! {
    #[test]
    fn the_signer_accepts_any_input_and_gives_a_valid_ascii_header(
        api_key in any::<String>(),
        secret in any::<String>(),
        random_key in any::<String>(),
        path in any::<String>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let secret = Secret::new(secret);
        let signature = iyzwsv2::signature(&secret, &random_key, &path, &body);
        prop_assert_eq!(signature.len(), 64);
        prop_assert!(signature.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let header = iyzwsv2::authorization(&api_key, &secret, &random_key, &path, &body);
        prop_assert!(header.to_str().is_ok_and(|h| h.starts_with("IYZWSv2 ")));
        prop_assert!(header.is_sensitive());
    }

    #[test]
    fn a_one_byte_change_in_the_body_changes_the_signature(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        index in any::<prop::sample::Index>(),
    ) {
        let secret = Secret::new("secretKey");
        let mut changed = body.clone();
        let i = index.index(changed.len());
        changed[i] ^= 0x01;
        prop_assert_ne!(
            iyzwsv2::signature(&secret, "rnd", "/p", &body),
            iyzwsv2::signature(&secret, "rnd", "/p", &changed)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_response_parser(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = serde_json::from_slice::<terminal_login::types::TokenResponse>(&bytes);
        let _ = serde_json::from_slice::<terminal_login::types::AuthorizeResponse>(&bytes);
        let _ = serde_json::from_slice::<terminal_login::types::TerminalError>(&bytes);
        let _ = serde_json::from_slice::<pwi::types::AccessTokenResponse>(&bytes);
    }

    #[test]
    fn json_shaped_noise_never_panics_the_pwi_envelope_parser(
        status in prop_oneof![Just("\"success\"".to_owned()), Just("\"failure\"".to_owned()), any::<i64>().prop_map(|n| n.to_string()), Just("true".to_owned()), Just("null".to_owned())],
        code in prop_oneof![any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()), any::<i64>().prop_map(|n| n.to_string()), Just("[]".to_owned())],
        system_time in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), Just("\"soon\"".to_owned()), Just("1e400".to_owned())],
    ) {
        let body = format!(r#"{{"status":{status},"errorCode":{code},"systemTime":{system_time},"accessToken":"x"}}"#);
        let _ = serde_json::from_str::<pwi::types::AccessTokenResponse>(&body);
    }
}
