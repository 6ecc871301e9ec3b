//! `payauth login` as an outside writer: it reads the store, the customer
//! consents (a fresh single-use code each try), the code is exchanged
//! once, and the new pair is saved to the store while the caches run, as
//! the CLI saves it: only over what it read, else over an older token
//! stored meanwhile; a newer one stored meanwhile stands.

use std::sync::Arc;
use std::time::Duration;

use payauth_core::{SaveIf, Secret, StoredToken, TokenStore};

use crate::ctx::Ctx;
use crate::provider::{Grant, Provider, number};

/// How many times the operator tries to log in, and to save.
const TRIES: u32 = 5;

pub(crate) async fn login(ctx: Arc<Ctx>, provider: Arc<Provider>, store: Arc<dyn TokenStore>) {
    for _ in 0..TRIES {
        // Read before the browser opens (an unreadable store: replaced).
        let found = store.load("sim").await;
        let code = provider.authorize();
        ctx.log(&format!("operator logs in with code c{code}"));
        match provider.request(Grant::Code(code), None).await {
            Ok(token) => {
                let stored = StoredToken::from_token(&token);
                for _ in 0..TRIES {
                    match keep(store.as_ref(), &stored, &found).await {
                        Ok(true) => return,
                        Ok(false) => {
                            ctx.log("operator kept a newer token stored meanwhile");
                            if let Some(rt) = token.refresh_token().and_then(|s| number(s, "rt-")) {
                                ctx.check().refresh_orphaned(rt);
                            }
                            return;
                        }
                        Err(_) => {}
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                if let Some(rt) = token.refresh_token().and_then(|s| number(s, "rt-")) {
                    ctx.check().refresh_orphaned(rt);
                }
                ctx.log("operator gave up saving the login");
                return;
            }
            Err(error) => {
                let error = error.unwrap_or_else(|e| e);
                ctx.log(&format!("operator login failed: {error}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `payauth login`'s save: over what it `found` (unreadable: a plain
/// save), counting as issued after it, or over an older token stored
/// meanwhile; whether it was stored (`false`: a newer one stands).
async fn keep(
    store: &dyn TokenStore,
    token: &StoredToken,
    found: &Result<Option<StoredToken>, payauth_core::Error>,
) -> Result<bool, payauth_core::Error> {
    let mut record = token.clone();
    let Ok(found) = found else {
        store.save("sim", &record).await?;
        return Ok(true);
    };
    let mut base = found.clone();
    if let Some(found) = &base {
        record.issued_at_unix_ms = record
            .issued_at_unix_ms
            .max(found.issued_at_unix_ms.saturating_add(1));
    }
    for _ in 0..3 {
        let holds: Vec<&Secret> = base.iter().map(|b| b.access_token.as_secret()).collect();
        let condition = SaveIf::Holds {
            access_tokens: &holds,
            or_nothing: true,
        };
        if store.save_if("sim", &record, condition).await? {
            return Ok(true);
        }
        match store.load("sim").await? {
            Some(now) if now.issued_at_unix_ms >= record.issued_at_unix_ms => return Ok(false),
            now => base = now,
        }
    }
    Err(payauth_core::Error::new(payauth_core::ErrorKind::Store))
}
