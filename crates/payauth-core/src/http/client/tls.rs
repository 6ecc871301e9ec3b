//! The TLS backend the features choose: rustls (ring or aws-lc-rs), the
//! platform's library, or none; the same settings for the provider and an
//! `https://` proxy; and which certificate check a failure names.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;

use super::{
    Backend, Bounded, Capabilities, ClientIdentity, Connector, Error, ErrorKind, Routes, pool,
};

/// What the TLS backend is built with.
pub(super) struct Settings<'a> {
    /// DER roots trusted beside the system's.
    pub(super) roots: &'a [Vec<u8>],
    /// The client certificate shown to providers that ask.
    pub(super) identity: Option<&'a ClientIdentity>,
}

/// rustls over `C`.
#[cfg(all(
    any(feature = "rustls-ring", feature = "rustls-aws-lc"),
    not(feature = "native-tls")
))]
pub(super) type Rustls<C> = hyper_rustls::HttpsConnector<C>;
/// The platform's TLS over `C`.
#[cfg(feature = "native-tls")]
pub(super) type Native<C> = hyper_tls::HttpsConnector<C>;

/// What a proxy can have of this backend.
pub(super) const CAPABILITIES: Capabilities = Capabilities {
    tls: cfg!(any(
        feature = "rustls-ring",
        feature = "rustls-aws-lc",
        feature = "native-tls"
    )),
};

/// The error for `https://` with no TLS feature on.
#[cfg(not(any(
    feature = "rustls-ring",
    feature = "rustls-aws-lc",
    feature = "native-tls"
)))]
pub(super) fn missing() -> Error {
    Error::new(ErrorKind::Config).with_description(
        "https:// needs a TLS backend: turn on payauth-core's `rustls-ring`, \
         `rustls-aws-lc` or `native-tls` feature",
    )
}

/// No TLS feature: plain HTTP only.
#[cfg(not(any(
    feature = "rustls-ring",
    feature = "rustls-aws-lc",
    feature = "native-tls"
)))]
pub(super) fn backend(
    tcp: HttpConnector,
    proxies: Option<Routes>,
    settings: &Settings<'_>,
    connect_timeout: Duration,
) -> Result<Backend, Error> {
    if !settings.roots.is_empty() || settings.identity.is_some() {
        return Err(missing());
    }
    let connector = Connector::new(tcp.clone(), tcp, proxies);
    Ok(Backend::Plain(pool(Bounded::new(
        connector,
        connect_timeout,
    ))))
}

/// No TLS, no certificate.
#[cfg(not(any(
    feature = "rustls-ring",
    feature = "rustls-aws-lc",
    feature = "native-tls"
)))]
pub(super) fn failed_check(_: &(dyn std::error::Error + 'static)) -> Option<String> {
    None
}

/// Whether `error` is a TLS failure (of either backend): a handshake that
/// did not complete, for a reason other than a certificate check.
pub(super) fn failed_handshake(error: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(feature = "native-tls")]
    if super::find::<native_tls::Error>(error).is_some() {
        return true;
    }
    #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
    if super::find::<rustls::Error>(error).is_some() {
        return true;
    }
    let _ = error;
    false
}

/// rustls, with the provider handed to it (never the process default)
/// and the platform's verifier plus `roots`; the same for the
/// provider and for an `https://` proxy.
#[cfg(all(
    any(feature = "rustls-ring", feature = "rustls-aws-lc"),
    not(feature = "native-tls")
))]
pub(super) fn backend(
    tcp: HttpConnector,
    proxies: Option<Routes>,
    settings: &Settings<'_>,
    connect_timeout: Duration,
) -> Result<Backend, Error> {
    use std::sync::Arc;

    #[cfg(feature = "rustls-aws-lc")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    // rustls 0.23.48 deprecates ring's provider for want of
    // post-quantum key exchange; it is still what `rustls-ring` is
    // for (quick to build). `rustls-aws-lc` has post-quantum groups.
    #[cfg(not(feature = "rustls-aws-lc"))]
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let provider = Arc::new(provider);
    let roots = settings
        .roots
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()));
    let config_error = |e: rustls::Error| Error::new(ErrorKind::Config).with_source(e);
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(config_error)?;
    let verifier = Arc::new(verifier);
    let config = || {
        Ok::<_, Error>(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(config_error)?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone()),
        )
    };
    // The identity goes to providers, never to a proxy.
    let to_proxy_config = config()?.with_no_client_auth();
    let config = match settings.identity {
        None => config()?.with_no_client_auth(),
        Some(identity) => {
            let (chain, key) = identity.rustls()?;
            config()?
                .with_client_auth_cert(chain, key)
                .map_err(config_error)?
        }
    };
    let https = |config| {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
    };
    let to_proxy = https(to_proxy_config).wrap_connector(tcp.clone());
    let connector = https(config).wrap_connector(Connector::new(tcp, to_proxy, proxies));
    Ok(Backend::Rustls(pool(Bounded::new(
        connector,
        connect_timeout,
    ))))
}

#[cfg(all(
    any(feature = "rustls-ring", feature = "rustls-aws-lc"),
    not(feature = "native-tls")
))]
impl ClientIdentity {
    /// The chain and key for rustls.
    fn rustls(
        &self,
    ) -> Result<
        (
            Vec<rustls::pki_types::CertificateDer<'static>>,
            rustls::pki_types::PrivateKeyDer<'static>,
        ),
        Error,
    > {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let chain = CertificateDer::pem_slice_iter(&self.chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|chain| !chain.is_empty())
            .ok_or_else(|| no_identity("no PEM certificate in the chain"))?;
        // The key's parse error is not kept: it could quote the key.
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.expose_secret().as_bytes())
            .map_err(|_| no_identity("the key is no PEM private key"))?;
        Ok((chain, key))
    }
}

/// The client identity cannot be used, for `why`.
#[cfg(any(
    feature = "rustls-ring",
    feature = "rustls-aws-lc",
    feature = "native-tls"
))]
fn no_identity(why: &str) -> Error {
    Error::new(ErrorKind::Config).with_description(format!("client identity: {why}"))
}

/// Which certificate check failed, when `error` says one did.
#[cfg(all(
    any(feature = "rustls-ring", feature = "rustls-aws-lc"),
    not(feature = "native-tls")
))]
pub(super) fn failed_check(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::AlertDescription as Alert;
    use rustls::CertificateError as Check;

    let check = match super::find::<rustls::Error>(error)? {
        rustls::Error::InvalidCertificate(check) => check,
        // The server's verdict on this client's certificate (mTLS).
        rustls::Error::AlertReceived(Alert::CertificateRequired) => {
            return Some("the server requires a client certificate (see identity)".into());
        }
        rustls::Error::AlertReceived(
            alert @ (Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            // The signature on the client's certificate (or its proof
            // of the key) did not verify: a CA of the same name.
            | Alert::DecryptError),
        ) => {
            return Some(format!(
                "the server refused the client certificate ({alert:?})"
            ));
        }
        _ => return None,
    };
    let what = match check {
        Check::UnknownIssuer => "its issuer is no CA this client trusts (unknown CA)",
        Check::Expired | Check::ExpiredContext { .. } => "it has expired",
        Check::NotValidYet | Check::NotValidYetContext { .. } => "it is not valid yet",
        Check::NotValidForName | Check::NotValidForNameContext { .. } => {
            "it is not valid for the host name (name mismatch)"
        }
        Check::Revoked => "it has been revoked",
        Check::BadSignature => "its signature is invalid",
        Check::BadEncoding => "it cannot be decoded",
        _ => return Some(format!("certificate verification failed: {check:?}")),
    };
    Some(format!("certificate verification failed: {what}"))
}

/// The platform's TLS library, with `roots` added to its own; the same
/// for the provider and for an `https://` proxy.
#[cfg(feature = "native-tls")]
pub(super) fn backend(
    tcp: HttpConnector,
    proxies: Option<Routes>,
    settings: &Settings<'_>,
    connect_timeout: Duration,
) -> Result<Backend, Error> {
    let config_error = |e: native_tls::Error| Error::new(ErrorKind::Config).with_source(e);
    let mut tls = native_tls::TlsConnector::builder();
    for der in settings.roots {
        tls.add_root_certificate(native_tls::Certificate::from_der(der).map_err(config_error)?);
    }
    // The identity goes to providers, never to a proxy.
    let to_proxy = tls.build().map_err(config_error)?;
    if let Some(identity) = settings.identity {
        tls.identity(identity.native()?);
    }
    let tls = tls.build().map_err(config_error)?;
    let to_proxy = hyper_tls::HttpsConnector::from((tcp.clone(), to_proxy.into()));
    let connector = Connector::new(tcp, to_proxy, proxies);
    let https = hyper_tls::HttpsConnector::from((connector, tls.into()));
    Ok(Backend::NativeTls(pool(Bounded::new(
        https,
        connect_timeout,
    ))))
}

#[cfg(feature = "native-tls")]
impl ClientIdentity {
    /// The identity for the platform's library (a PKCS#8 key).
    fn native(&self) -> Result<native_tls::Identity, Error> {
        native_tls::Identity::from_pkcs8(&self.chain_pem, self.key_pem.expose_secret().as_bytes())
            .map_err(|_| no_identity("not a PEM chain and PKCS#8 PEM key"))
    }
}

/// A failed certificate check, as the platform's library words it
/// (OpenSSL's verify results and alerts), named as rustls' are.
#[cfg(feature = "native-tls")]
pub(super) fn failed_check(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    const CHECKS: [(&str, &str); 7] = [
        (
            "local issuer",
            "its issuer is no CA this client trusts (unknown CA)",
        ),
        (
            "self-signed",
            "its issuer is no CA this client trusts (unknown CA)",
        ),
        (
            "self signed",
            "its issuer is no CA this client trusts (unknown CA)",
        ),
        ("has expired", "it has expired"),
        ("not yet valid", "it is not valid yet"),
        (
            "hostname mismatch",
            "it is not valid for the host name (name mismatch)",
        ),
        ("signature failure", "its signature is invalid"),
    ];
    let shown = find_native(error)?;
    let lower = shown.to_ascii_lowercase();
    if lower.contains("alert certificate required") {
        return Some("the server requires a client certificate (see identity)".into());
    }
    if [
        "alert bad certificate",
        "alert unknown ca",
        "alert certificate unknown",
        "alert decrypt error",
    ]
    .iter()
    .any(|alert| lower.contains(alert))
    {
        return Some(format!(
            "the server refused the client certificate ({shown})"
        ));
    }
    if !lower.contains("certificate verify failed") {
        return None;
    }
    let what = CHECKS
        .iter()
        .find(|(words, _)| lower.contains(words))
        .map_or(shown.as_str(), |(_, what)| what);
    Some(format!("certificate verification failed: {what}"))
}

/// The platform library's words among `error`'s causes: a handshake
/// error, or an alert read later (an `io::Error` wrapping OpenSSL's).
#[cfg(feature = "native-tls")]
fn find_native(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(native) = super::find::<native_tls::Error>(error) {
        return Some(native.to_string());
    }
    let mut next = Some(error);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            return Some(inner.to_string());
        }
        next = cause.source();
    }
    None
}
