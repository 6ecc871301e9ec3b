//! [`FileStore`]: tokens in owner-only files, replaced atomically.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{StoredToken, TokenStore};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::source::BoxFuture;

/// Tokens in files, one per key, in a directory: written to a temporary
/// file in the same directory, flushed to disk, then renamed over the old
/// one, so a crash mid-write leaves the old or the new token, never a torn
/// file. Files are created owner-only (0600) on Unix.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store in `dir` (created on first save, 0700 on Unix).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file that holds `key`: keys are hex-encoded so any key is a safe
    /// file name.
    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", crate::hex::encode_lower(key.as_bytes())))
    }

    fn store_error(action: &str, path: &Path, error: &std::io::Error) -> Error {
        Error::new(ErrorKind::Store).with_description(format!(
            "cannot {action} {}: {}",
            path.display(),
            error.kind()
        ))
    }

    fn load_blocking(path: &Path) -> Result<Option<StoredToken>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::new(ErrorKind::Store).with_description(format!(
                    "{} is not a stored token (line {}, column {})",
                    path.display(),
                    e.line(),
                    e.column()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::store_error("read", path, &e)),
        }
    }

    fn save_blocking(dir: &Path, path: &Path, token: &StoredToken) -> Result<(), Error> {
        create_private_dir(dir).map_err(|e| Self::store_error("create", dir, &e))?;
        let bytes =
            serde_json::to_vec(token).map_err(|e| Error::new(ErrorKind::Store).with_source(e))?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random)
            .map_err(|e| Error::new(ErrorKind::Store).with_description(e.to_string()))?;
        let temp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            u64::from_le_bytes(random)
        ));
        let written = (|| {
            let mut file = create_private_file(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, path)?;
            // Make the rename itself durable.
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        written.map_err(|e: std::io::Error| {
            let _ = std::fs::remove_file(&temp);
            Self::store_error("write", path, &e)
        })
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        Error::new(ErrorKind::Store).with_description(format!("store task failed: {e}"))
    })?
}

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        let path = self.path(key);
        Box::pin(blocking(move || Self::load_blocking(&path)))
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let (dir, path, token) = (self.dir.clone(), self.path(key), token.clone());
        Box::pin(blocking(move || Self::save_blocking(&dir, &path, &token)))
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let path = self.path(key);
        let expected = if_refresh_token.cloned();
        Box::pin(blocking(move || {
            if expected.is_some()
                && !Self::load_blocking(&path)?
                    .is_some_and(|stored| stored.is_cleared_by(expected.as_ref()))
            {
                return Ok(());
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Self::store_error("remove", &path, &e))
                }
                _ => Ok(()),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::token::{AccessToken, Issued};

    const SENTINEL: &str = "SENTINEL-store-77";

    fn token(clock: &ManualClock, value: &str, refresh: Option<&str>) -> AccessToken {
        AccessToken::new(
            Secret::new(value),
            "Bearer",
            Issued::now(clock),
            Duration::from_secs(3600),
        )
        .unwrap()
        .with_refresh_token(refresh.map(Secret::new))
    }

    #[tokio::test]
    async fn file_store_round_trips_and_writes_owner_only_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let clock = ManualClock::new();
        let stored = StoredToken::from_token(&token(&clock, SENTINEL, Some("r1")));
        assert_eq!(store.load("mypos/id").await.unwrap(), None);
        store.save("mypos/id", &stored).await.unwrap();
        assert_eq!(store.load("mypos/id").await.unwrap(), Some(stored));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path("mypos/id"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[tokio::test]
    async fn a_crash_mid_write_leaves_the_old_token_readable() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let clock = ManualClock::new();
        let old = StoredToken::from_token(&token(&clock, "old", None));
        store.save("k", &old).await.unwrap();
        // A crash after writing part of the temporary file, before rename:
        std::fs::write(dir.path().join(".tmp-1-2"), b"{\"access_tok").unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(old));
    }

    #[tokio::test]
    async fn a_corrupt_file_is_a_store_error_not_a_panic_and_shows_no_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        std::fs::write(
            store.path("k"),
            format!("{{\"access_token\":\"{SENTINEL}\","),
        )
        .unwrap();
        let error = store.load("k").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(!error.to_string().contains(SENTINEL));
    }
}
