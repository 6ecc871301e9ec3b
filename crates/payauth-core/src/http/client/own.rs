//! The application's own reqwest client as a [`Transport`] (feature
//! `reqwest-client`).

use super::{Error, ErrorKind, Sending, Transport, send_error_kind};

pub(super) struct Reqwest(pub(super) reqwest::Client);

impl Transport for Reqwest {
    fn name(&self) -> &'static str {
        "your reqwest client"
    }

    fn send(&self, mut request: reqwest::Request) -> Sending<'_> {
        Box::pin(async move {
            let sent_to = request.url().clone();
            // A body that cannot be replayed: no client can re-send the
            // form (its client secret) to where a 307 or 308 points.
            if let Some(body) = request.body_mut().take() {
                *request.body_mut() = Some(reqwest::Body::wrap(body));
            }
            let response = self.0.execute(request).await.map_err(|e| {
                let e = e.without_url();
                let (kind, description) = send_error_kind(&e);
                let error = Error::new(kind).with_source(e);
                match description {
                    Some(description) => error.with_description(description),
                    None => error,
                }
            })?;
            if response.url() != &sent_to {
                return Err(Error::new(ErrorKind::Config).with_description(
                    "your reqwest client followed a redirect from the token endpoint; \
                     payauth refuses the answer (build the client with \
                     redirect::Policy::none())",
                ));
            }
            Ok(response)
        })
    }
}
