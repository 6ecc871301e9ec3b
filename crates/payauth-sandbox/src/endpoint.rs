//! The routes the sandbox serves.

use std::fmt;

/// One route of one provider API. Every route lives on the same server;
/// their paths do not collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// iyzico Terminal API `POST /in-store/oauth2/authorize`.
    IyzicoAuthorize,
    /// iyzico Terminal API `POST /in-store/oauth2/token`.
    IyzicoToken,
    /// iyzico Terminal API `POST /in-store/oauth2/token/refresh`.
    IyzicoRefresh,
    /// iyzico Pay with iyzico
    /// `POST /v1/pay-with-iyzico/third-party-session/retrieve/access-token`.
    PwiAccessToken,
    /// iyzico Pay with iyzico, a later call that takes the access token in
    /// its `access-token` header:
    /// `POST /v1/pay-with-iyzico/third-party-session/retrieve/last-payment-info`.
    PwiLastPaymentInfo,
    /// VakıfBank retail `GET /auth/oauth/v2/authorize`.
    VakifbankAuthorize,
    /// VakıfBank corporate `GET /auth/oauth/v2/commercial/authorize`.
    VakifbankCommercialAuthorize,
    /// VakıfBank `POST /auth/oauth/v2/token`.
    VakifbankToken,
    /// myPOS `POST /oauth/token`.
    MyposToken,
    /// myPOS `POST /oauth/revoke`.
    MyposRevoke,
}

impl Endpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::IyzicoAuthorize,
        Self::IyzicoToken,
        Self::IyzicoRefresh,
        Self::PwiAccessToken,
        Self::PwiLastPaymentInfo,
        Self::VakifbankAuthorize,
        Self::VakifbankCommercialAuthorize,
        Self::VakifbankToken,
        Self::MyposToken,
        Self::MyposRevoke,
    ];

    /// How many endpoints there are.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// The request path, as the provider spells it.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::IyzicoAuthorize => "/in-store/oauth2/authorize",
            Self::IyzicoToken => "/in-store/oauth2/token",
            Self::IyzicoRefresh => "/in-store/oauth2/token/refresh",
            Self::PwiAccessToken => "/v1/pay-with-iyzico/third-party-session/retrieve/access-token",
            Self::PwiLastPaymentInfo => {
                "/v1/pay-with-iyzico/third-party-session/retrieve/last-payment-info"
            }
            Self::VakifbankAuthorize => "/auth/oauth/v2/authorize",
            Self::VakifbankCommercialAuthorize => "/auth/oauth/v2/commercial/authorize",
            Self::VakifbankToken => "/auth/oauth/v2/token",
            Self::MyposToken => "/oauth/token",
            Self::MyposRevoke => "/oauth/revoke",
        }
    }

    /// The HTTP method the endpoint answers (`GET` for the VakıfBank
    /// browser redirects, `POST` for everything else).
    #[must_use]
    pub const fn method(self) -> &'static str {
        match self {
            Self::VakifbankAuthorize | Self::VakifbankCommercialAuthorize => "GET",
            _ => "POST",
        }
    }

    /// The endpoint serving `path` (no query string), if any.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// Position in [`Endpoint::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method(), self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_maps_back_to_its_endpoint() {
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(Endpoint::from_path(endpoint.path()), Some(endpoint));
            assert_eq!(endpoint.index(), i);
        }
        assert_eq!(Endpoint::from_path("/oauth/token/"), None);
    }
}
