//! `payauth login` as an outside writer: the customer consents (a fresh
//! single-use code each try), the code is exchanged once, and the new pair
//! is saved to the store while the caches run.

use std::sync::Arc;
use std::time::Duration;

use payauth_core::{StoredToken, TokenStore};

use crate::ctx::Ctx;
use crate::provider::{Grant, Provider, number};
use crate::store::StoreHandle;

/// How many times the operator tries to log in, and to save.
const TRIES: u32 = 5;

pub(crate) async fn login(ctx: Arc<Ctx>, provider: Arc<Provider>, store: StoreHandle) {
    for _ in 0..TRIES {
        let code = provider.authorize();
        ctx.log(&format!("operator logs in with code c{code}"));
        match provider.request(Grant::Code(code), None).await {
            Ok(token) => {
                let stored = StoredToken::from_token(&token);
                for _ in 0..TRIES {
                    if store.save("sim", &stored).await.is_ok() {
                        return;
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
