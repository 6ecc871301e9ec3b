//! Every generated response type survives arbitrary bytes without a panic.

use payauth_vakifbank::generated::gateway::types;
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_response_parser(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = serde_json::from_slice::<types::TokenResponse>(&bytes);
        let _ = serde_json::from_slice::<types::OAuthError>(&bytes);
    }
}
