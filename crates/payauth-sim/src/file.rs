//! A real [`FileStore`], shared by the one process's cache and the
//! operator's `payauth login` (two handles on one directory, as two
//! processes would have), with disk faults on any call.
//!
//! Every call runs on tokio's blocking pool. A paused runtime does not
//! auto-advance its clock while a blocking task runs (tokio 1.23 on), so a
//! file operation takes no simulated time and ends within the step that
//! started it, and the two writers' calls run in the order the steps give
//! them. What the run does not decide is the order of two calls in flight
//! at once on one runtime (a cache's read beside its own save): the OS
//! does, under the store's lock, so such a seed may not replay byte for
//! byte. The lock itself is never contended across writers here (their
//! steps never overlap); racing processes test it
//! (`payauth-core`'s file store tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use payauth_core::{
    BoxFuture, Error, ErrorKind, FileStore, SaveIf, Secret, StoredToken, TokenStore,
};

use crate::ctx::Ctx;
use crate::provider::number;
use crate::store::{describe, result, who};

/// A directory of one seed's own, removed when the run ends.
pub(crate) struct Dir(PathBuf);

impl Dir {
    pub(crate) fn new(seed: u64) -> Self {
        let path = std::env::temp_dir().join(format!(
            "payauth-sim-{}-{seed}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One writer's handle on the shared directory.
pub(crate) struct FileHandle {
    ctx: Arc<Ctx>,
    store: FileStore,
    replica: Option<usize>,
}

/// What a fault does to a file call.
enum Fault {
    None,
    /// Fails before touching the file.
    Before,
    /// Does its work, then reports an error (a full disk on the fsync of
    /// the directory, say).
    After,
}

impl FileHandle {
    pub(crate) fn new(ctx: &Arc<Ctx>, dir: &Dir, replica: Option<usize>) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            store: FileStore::new(dir.path()),
            replica,
        }
    }

    fn draw(&self) -> Fault {
        let rate = self.ctx.faults().store;
        let mut rng = self.ctx.rng();
        if !rng.chance(rate) {
            return Fault::None;
        }
        if rng.chance(0.7) {
            Fault::Before
        } else {
            Fault::After
        }
    }

    /// One write through the fault model, telling the ledger what it did.
    async fn write(
        &self,
        token: &StoredToken,
        how: &str,
        op: impl Future<Output = Result<bool, Error>>,
    ) -> Result<bool, Error> {
        let _busy = self.ctx.busy();
        tokio::time::sleep(Duration::from_millis(1)).await;
        let fault = self.draw();
        if matches!(fault, Fault::Before) {
            let out = Err(failed());
            self.returned(token, false);
            self.ctx.log(&format!(
                "{} saved {}{how}: {}",
                who(self.replica),
                describe(token),
                result(&out)
            ));
            return out;
        }
        let before = self.store.load(KEY).await.ok().flatten();
        let mut out = op.await;
        let applied = matches!(out, Ok(true));
        if applied {
            let mut check = self.ctx.check();
            if let Some(new) = rt(token) {
                if let Some(old) = before
                    .as_ref()
                    .and_then(rt)
                    .filter(|_| self.replica.is_some())
                {
                    check.stored_over(old, new);
                }
                check.stored(new);
            }
        }
        if matches!(fault, Fault::After) {
            out = Err(failed());
        }
        self.returned(token, applied);
        self.ctx.log(&format!(
            "{} saved {}{how}: {}",
            who(self.replica),
            describe(token),
            result(&out)
        ));
        out
    }

    /// A save of `token` returned.
    fn returned(&self, token: &StoredToken, applied: bool) {
        if let Some(rt) = rt(token) {
            self.ctx
                .check()
                .refresh_save_returned(rt, self.replica, applied, false);
        }
    }
}

/// The key every writer uses (as the store model's).
const KEY: &str = "sim";

fn rt(token: &StoredToken) -> Option<u64> {
    token
        .refresh_token
        .as_ref()
        .and_then(|s| number(s.as_secret(), "rt-"))
}

impl TokenStore for FileHandle {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move {
            let _busy = self.ctx.busy();
            tokio::time::sleep(Duration::from_millis(1)).await;
            if matches!(self.draw(), Fault::Before) {
                let error = Error::new(ErrorKind::Store)
                    .with_description("the token file could not be read (injected)");
                self.ctx
                    .log(&format!("{} store read failed: {error}", who(self.replica)));
                return Err(error);
            }
            self.store.load(key).await
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.write(token, "", async {
                self.store.save(key, token).await.map(|()| true)
            })
            .await
            .map(drop)
        })
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            self.write(
                token,
                " if unchanged",
                self.store.save_if(key, token, condition),
            )
            .await
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let _busy = self.ctx.busy();
            tokio::time::sleep(Duration::from_millis(1)).await;
            let out = match self.draw() {
                Fault::Before => Err(failed()),
                Fault::After => {
                    let _ = self.store.clear(key, if_holds).await;
                    Err(failed())
                }
                Fault::None => self.store.clear(key, if_holds).await,
            };
            self.ctx.log(&format!(
                "{} cleared the file: {}",
                who(self.replica),
                result(&out)
            ));
            out
        })
    }
}

/// The error of an injected disk fault.
fn failed() -> Error {
    Error::new(ErrorKind::Store).with_description("the token file could not be written (injected)")
}
