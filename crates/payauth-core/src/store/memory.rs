//! [`MemoryStore`]: tokens in process memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use super::{SaveIf, StoredToken, TokenStore};
use crate::error::Error;
use crate::secret::Secret;
use crate::source::BoxFuture;

/// Tokens in process memory: lost on restart, shared by the caches of one
/// process.
///
/// Every call runs under one mutex, so `save_if` and a conditional `clear`
/// are atomic among the process's caches. A restart loses everything: a
/// rotated refresh token held only here is gone with the process (use a
/// [`FileStore`](super::FileStore) or Redis for anything that must
/// outlive it).
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, StoredToken>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move { Ok(self.lock().get(key).cloned()) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.lock().insert(key.to_owned(), token.clone());
            Ok(())
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut tokens = self.lock();
            if tokens
                .get(key)
                .is_some_and(|stored| stored.is_cleared_by(if_holds))
            {
                tokens.remove(key);
            }
            Ok(())
        })
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let mut tokens = self.lock();
            if !condition.allows(tokens.get(key), token) {
                return Ok(false);
            }
            tokens.insert(key.to_owned(), token.clone());
            Ok(true)
        })
    }
}
