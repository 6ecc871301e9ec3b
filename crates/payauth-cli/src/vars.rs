//! The names of the environment variables that hold the command's
//! settings (secrets' names are in [`crate::secrets`]): one place, for
//! the flags and for the lines `payauth sandbox` prints.

/// `--environment`.
pub(crate) const ENVIRONMENT: &str = "PAYAUTH_ENVIRONMENT";
/// `--timeout`.
pub(crate) const TIMEOUT: &str = "PAYAUTH_TIMEOUT";
/// `payauth token --config`.
pub(crate) const CONFIG: &str = "PAYAUTH_CONFIG";
/// `--store-dir` of `payauth login` and `payauth token`.
pub(crate) const STORE_DIR: &str = "PAYAUTH_STORE_DIR";
/// myPOS `--client-id`.
pub(crate) const MYPOS_CLIENT_ID: &str = "PAYAUTH_MYPOS_CLIENT_ID";
/// myPOS `--revoke-base-url`.
pub(crate) const MYPOS_REVOKE_BASE_URL: &str = "PAYAUTH_MYPOS_REVOKE_BASE_URL";
/// VakıfBank `--client-id`.
pub(crate) const VAKIFBANK_CLIENT_ID: &str = "PAYAUTH_VAKIFBANK_CLIENT_ID";
/// VakıfBank `--consent-id`.
pub(crate) const VAKIFBANK_CONSENT_ID: &str = "PAYAUTH_VAKIFBANK_CONSENT_ID";
/// iyzico Terminal API `--client-id`.
pub(crate) const IYZICO_CLIENT_ID: &str = "PAYAUTH_IYZICO_CLIENT_ID";
/// iyzico terminal `--username`.
pub(crate) const IYZICO_USERNAME: &str = "PAYAUTH_IYZICO_USERNAME";
/// iyzico merchant `--api-key`.
pub(crate) const IYZICO_API_KEY: &str = "PAYAUTH_IYZICO_API_KEY";
/// Pay-with-iyzico `--member`.
pub(crate) const IYZICO_PWI_MEMBER: &str = "PAYAUTH_IYZICO_PWI_MEMBER";
