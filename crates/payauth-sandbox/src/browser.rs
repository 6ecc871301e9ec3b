//! The customer's browser, played for tests, examples and `payauth demo`:
//! the sandbox's VakıfBank authorize page logs the customer in and
//! consents at once, and [`authorize`] returns where it sends the browser
//! back to.

use payauth_core::http::HttpClient;
use payauth_core::{Error, ErrorKind};

/// Opens `authorize_url` (a `PendingAuthorization`'s URL pointing at the
/// sandbox) as the customer's browser would and returns the redirect the
/// bank sends it to: the `redirect_uri` with `code` and `state`, or with
/// `error` when the sandbox is told the customer refuses. Hand it to
/// `PendingAuthorization::callback`.
///
/// payauth's [`HttpClient`] never follows
/// redirects.
///
/// ```no_run
/// # async fn run(pending_url: &str) -> Result<(), payauth_core::Error> {
/// let http = payauth_core::http::default_client()?;
/// let redirect = payauth_sandbox::browser::authorize(&http, pending_url).await?;
/// assert!(redirect.contains("state="));
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`ErrorKind::Transport`] when the page cannot be opened,
/// [`ErrorKind::Malformed`] when it does not redirect.
pub async fn authorize(http: &HttpClient, authorize_url: &str) -> Result<String, Error> {
    let page = http
        .execute(http.requests().get(authorize_url).build()?)
        .await?;
    page.headers()
        .get(reqwest::header::LOCATION)
        .filter(|_| page.status().is_redirection())
        .and_then(|location| location.to_str().ok())
        .map(ToOwned::to_owned)
        .ok_or_else(|| {
            Error::new(ErrorKind::Malformed)
                .with_status(page.status().as_u16())
                .with_description("the authorize page did not redirect")
        })
}
