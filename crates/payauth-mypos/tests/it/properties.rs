//! Every generated response type survives arbitrary bytes without a panic.

use payauth_mypos::generated::oauth::types;
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_response_parser(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = serde_json::from_slice::<types::TokenResponse>(&bytes);
        let _ = serde_json::from_slice::<types::OAuthError>(&bytes);
    }

    #[test]
    fn expires_in_of_any_json_scalar_type_never_panics(value in prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("18446744073709551616".to_owned()),
    ]) {
        let body = format!(r#"{{"access_token":"t","token_type":"Bearer","expires_in":{value}}}"#);
        let _ = serde_json::from_str::<types::TokenResponse>(&body);
    }
}
