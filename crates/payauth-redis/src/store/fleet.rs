//! The fleet parts of [`RedisStore`] the cache relies on beyond the lease:
//! a conditional save (the condition checked, then a compare-and-set on
//! the version), and a failed fetch shared with the other replicas for the
//! holder's failure backoff (a third key under the same hash tag, with
//! `PX` as its TTL).

use std::time::Duration;

use payauth_core::{Error, ErrorKind, SaveIf, StoredFailure, StoredToken};
use redis::aio::ConnectionLike;

use super::{RedisStore, encode, invoke, millis, redis_error};
use crate::scripts;

/// How often a save that never replaces a newer token retries after
/// another write landed between its read and its write.
const CAS_ATTEMPTS: usize = 3;
/// The most bytes of a shared failure read back (it is a short JSON
/// object; anything longer is not one).
const MAX_FAILURE_BYTES: usize = 4096;

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// [`TokenStore::save_if`](payauth_core::TokenStore::save_if),
    /// atomically: read the stored token and its version, check the
    /// condition, write only if the version is unchanged.
    pub(super) async fn save_if_cas(
        &self,
        key: &str,
        token: &StoredToken,
        condition: SaveIf<'_>,
    ) -> Result<bool, Error> {
        let keys = self.keys(key);
        let (bytes, keep) = encode(self.encryption.as_ref(), &keys.token, token)?;
        let keep = keep.to_string();
        for _ in 0..CAS_ATTEMPTS {
            let (version, stored) = match self.load_versioned(key).await {
                Ok(Some((version, stored))) => (version, Some(stored)),
                Ok(None) => (0, None),
                // Unreadable (another key, corrupt): as good as nothing.
                Err(_) => (self.version(&keys.token).await?, None),
            };
            if !condition.allows(stored.as_ref(), token) {
                return Ok(false);
            }
            let written: i64 = invoke(
                &scripts::SAVE_IF_VERSION,
                &[&keys.token],
                &[version.to_string().as_bytes(), &bytes, keep.as_bytes()],
                &self.conn,
            )
            .await
            .map_err(|e| redis_error("write to", &e))?;
            if written != -2 {
                return Ok(true);
            }
        }
        Err(Error::new(ErrorKind::Store)
            .with_description("the stored token kept changing under a save; not saved"))
    }

    /// The token's version as the save script will read it.
    async fn version(&self, token_key: &str) -> Result<u64, Error> {
        let version: i64 = invoke(&scripts::VERSION, &[token_key], &[], &self.conn)
            .await
            .map_err(|e| redis_error("read from", &e))?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    /// [`SharedStore::share_failure`](payauth_core::SharedStore::share_failure):
    /// `SET failure <json> PX ttl`.
    pub(super) async fn share_failure_for(
        &self,
        key: &str,
        failure: &StoredFailure,
        ttl: Duration,
    ) -> Result<(), Error> {
        let json =
            serde_json::to_vec(failure).map_err(|e| Error::new(ErrorKind::Store).with_source(e))?;
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(&self.keys(key).failure)
            .arg(json)
            .arg("PX")
            .arg(millis(ttl).max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("write to", &e))?;
        Ok(())
    }

    /// [`SharedStore::shared_failure`](payauth_core::SharedStore::shared_failure):
    /// the shared failure, read with a size cap.
    pub(super) async fn shared_failure_for(
        &self,
        key: &str,
    ) -> Result<Option<StoredFailure>, Error> {
        let mut conn = self.conn.clone();
        let bytes: Vec<u8> = redis::cmd("GETRANGE")
            .arg(&self.keys(key).failure)
            .arg(0)
            .arg(MAX_FAILURE_BYTES)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("read from", &e))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        if bytes.len() > MAX_FAILURE_BYTES {
            return Err(
                Error::new(ErrorKind::Store).with_description("the shared failure is too large")
            );
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|_| {
            Error::new(ErrorKind::Store).with_description("the shared failure is not payauth JSON")
        })
    }
}
