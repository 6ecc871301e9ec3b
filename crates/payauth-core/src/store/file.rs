//! [`FileStore`]: tokens in owner-only files in a private directory,
//! replaced atomically, read only from files and directories no other user
//! could have planted.

use std::fs::{self, File, Metadata};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{MAX_STORED_TOKEN_BYTES, SaveIf, StoredToken, TokenStore};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::source::BoxFuture;

/// The longest key whose file name is its hex form: 64 bytes make a
/// 133-byte name, within the name limit of every common file system
/// (eCryptfs's 143 included). Longer keys are named by their SHA-256.
const MAX_HEX_KEY: usize = 64;
/// The longest key that earlier versions named by its hex form (a 255-byte
/// name, Linux's `NAME_MAX`): such files are still read, and moved on the
/// next save.
const MAX_LEGACY_HEX_KEY: usize = 125;
/// Temporary files are `.tmp-<pid>-<random>`.
const TEMP_PREFIX: &str = ".tmp-";
/// Where the directory itself cannot be locked (Windows), the lock file
/// every write holds a lock on (no key's file name starts with a dot).
#[cfg(not(unix))]
const LOCK_FILE: &str = ".lock";
/// How old a temporary file must be before a save removes it as left by a
/// writer that died mid-save (a live save takes milliseconds); also how
/// often a store looks for such files.
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Tokens in files, one per key, in a private directory.
///
/// A save writes a temporary file in the same directory, flushes it to
/// disk, then renames it over the old one, so a crash mid-write leaves the
/// old or the new token, never a torn file; temporary files a killed writer
/// left behind are removed, once they are ten minutes old, by a store's
/// first save and then by a save at most every ten minutes (looking for
/// them lists the directory, so it is not done on every save).
///
/// # Cost and concurrency
/// An operation's cost does not grow with the number of tokens held: it
/// touches its key's file and the directory's own metadata, never lists
/// the directory (but for the sweep above). At most
/// [`FileStore::CONCURRENCY`] operations of a store and its clones run at
/// once, on tokio's blocking threads; more wait in line, holding no
/// thread, so thousands of caches saving at once neither exhaust the
/// blocking pool nor starve each other. A waiting operation cancelled by
/// its caller's timeout never starts; one that started runs to its end.
/// Writes flush their token to disk before taking the lock, so writes of
/// different keys overlap their flushes.
///
/// Another local user must not be able to read the tokens nor plant one,
/// so on Unix the store refuses, with an [`ErrorKind::Store`] saying what to
/// fix: a directory that is a symbolic link, not owned by the current user,
/// or open to group or others (it creates it 0700); a token file that is a
/// symbolic link, not a regular file (a FIFO, a directory), not owned by
/// the directory's owner, or larger than [`MAX_STORED_TOKEN_BYTES`]. Token
/// files are created 0600. The directory is checked (by `lstat`, no
/// symbolic link followed) on every operation. The directory must be
/// writable even to load: the store learns the current user from a file
/// it creates there (there is no safe `geteuid`), once per store and its
/// clones.
///
/// Any key works: keys up to 64 bytes are hex-encoded into the file name,
/// longer ones named by their SHA-256 digest (`sha256-<hex>.json`), so no
/// two keys share a file.
///
/// # Atomicity
/// Every write ([`save`](TokenStore::save), the compare-and-set
/// [`save_if`](TokenStore::save_if), the conditional
/// [`clear`](TokenStore::clear)) holds an exclusive OS advisory lock
/// (`flock` on the directory itself on Unix, `LockFileEx` on a `.lock`
/// file in it on Windows) from its read to its write, so read-compare-write and
/// read-compare-remove are atomic across threads and processes that use a
/// `FileStore` on the same directory (a service and `payauth login`, say):
/// a token another writer saved between the read and the write is never
/// overwritten nor removed. Reads take no lock (a rename is atomic). The
/// lock is advisory: a process that writes the files by other means is not
/// held back, and some network file systems do not honour it. The lock is
/// released by the OS when its holder dies. Tokens survive restarts (they
/// are on disk, flushed before the rename).
///
/// ```
/// use payauth_core::FileStore;
/// let store = FileStore::new("/var/lib/my-service/tokens");
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What a store and its clones share.
struct Shared {
    /// One per operation running, [`FileStore::CONCURRENCY`] in all.
    permits: Arc<tokio::sync::Semaphore>,
    /// The current user, learned once from a probe file.
    #[cfg(unix)]
    uid: OnceLock<u32>,
    /// When this store last looked for stale temporary files.
    swept: Mutex<Option<Instant>>,
    /// Operations running now, and the most seen at once.
    #[cfg(test)]
    running: std::sync::atomic::AtomicUsize,
    #[cfg(test)]
    most_running: std::sync::atomic::AtomicUsize,
}

impl FileStore {
    /// How many of a store's operations (with its clones') run at once on
    /// tokio's blocking threads; the rest wait their turn holding no
    /// thread. Writes of different keys overlap their disk flushes, so a
    /// few run better than one; many more only queue in the kernel.
    pub const CONCURRENCY: usize = 16;

    /// A store in `dir` (created 0700 on first save, with any missing
    /// parents).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            shared: Arc::new(Shared {
                permits: Arc::new(tokio::sync::Semaphore::new(Self::CONCURRENCY)),
                #[cfg(unix)]
                uid: OnceLock::new(),
                swept: Mutex::new(None),
                #[cfg(test)]
                running: std::sync::atomic::AtomicUsize::new(0),
                #[cfg(test)]
                most_running: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// Checks that tokens can be kept here, creating the directory (0700,
    /// with any missing parents) if needed: what a process about to
    /// receive a token it cannot get again calls first (`payauth login`
    /// checks before the browser opens, so an unusable store never costs
    /// an exchanged login).
    ///
    /// # Errors
    /// [`ErrorKind::Store`] saying what to fix, as a save would.
    pub async fn check_writable(&self) -> Result<(), Error> {
        let files = Files {
            dir: self.dir.clone(),
            path: self.dir.clone(),
            legacy: None,
            shared: Arc::clone(&self.shared),
        };
        self.blocking(move || {
            files
                .locked(true, |_| Ok(()))?
                .ok_or_else(|| refused("the token directory vanished", &files.dir))
        })
        .await
    }

    /// The file that holds `key`.
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }

    /// The files of one key, for a blocking task.
    fn files(&self, key: &str) -> Files {
        Files {
            dir: self.dir.clone(),
            path: self.path(key),
            legacy: legacy_file_name(key).map(|name| self.dir.join(name)),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs `work` on a blocking thread once one of the store's
    /// [`FileStore::CONCURRENCY`] permits is free. The permit is held to
    /// the end of `work`, even when the caller stops waiting.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::new(ErrorKind::Store).with_description(format!("store task failed: {e}"))
        };
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|e| failed(&e))?;
        #[cfg(test)]
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            {
                use std::sync::atomic::Ordering::SeqCst;
                let now = shared.running.fetch_add(1, SeqCst) + 1;
                shared.most_running.fetch_max(now, SeqCst);
                // Long enough for waiting callers to pile up.
                std::thread::sleep(Duration::from_millis(1));
                let done = work();
                shared.running.fetch_sub(1, SeqCst);
                done
            }
            #[cfg(not(test))]
            work()
        })
        .await
        .map_err(|e| failed(&e))?
    }
}

/// The file name of `key`: its hex form when short, else its SHA-256
/// digest. Hex names hold only hex digits before `.json` and digest names
/// start with `sha256-`, so neither scheme can produce the other's name.
fn file_name(key: &str) -> String {
    if key.len() <= MAX_HEX_KEY {
        hex_file_name(key)
    } else {
        format!(
            "sha256-{}.json",
            crate::internal::hex::encode_lower(&Sha256::digest(key.as_bytes()))
        )
    }
}

/// Where earlier versions kept `key`, when that differs from
/// [`file_name`].
fn legacy_file_name(key: &str) -> Option<String> {
    (MAX_HEX_KEY < key.len() && key.len() <= MAX_LEGACY_HEX_KEY).then(|| hex_file_name(key))
}

fn hex_file_name(key: &str) -> String {
    format!(
        "{}.json",
        crate::internal::hex::encode_lower(key.as_bytes())
    )
}

/// What went wrong, first (descriptions are cut after a few hundred
/// characters), then the path it concerns.
fn refused(what: impl std::fmt::Display, path: &Path) -> Error {
    Error::new(ErrorKind::Store).with_description(format!("{what} ({})", path.display()))
}

fn io_failed(action: &str, path: &Path, error: &io::Error) -> Error {
    refused(format_args!("{action}: {}", error.kind()), path)
}

fn too_large(what: &str, path: &Path) -> Error {
    refused(
        format_args!(
            "{what} is larger than the {MAX_STORED_TOKEN_BYTES} bytes a stored token may take"
        ),
        path,
    )
}

/// The files of one key, used from a blocking task.
struct Files {
    dir: PathBuf,
    path: PathBuf,
    legacy: Option<PathBuf>,
    shared: Arc<Shared>,
}

impl Files {
    fn load(&self) -> Result<Option<StoredToken>, Error> {
        match self.check_dir()? {
            Some(dir) => self.load_in(&dir),
            None => Ok(None),
        }
    }

    /// Runs `work` holding the directory's write lock (creating the
    /// directory, private, when `create`); `None` without running it when
    /// the directory does not exist and is not to be created.
    fn locked<T>(
        &self,
        create: bool,
        work: impl FnOnce(&Metadata) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        if create {
            create_private_dir(&self.dir)
                .map_err(|e| io_failed("cannot create the token directory", &self.dir, &e))?;
        }
        let Some(dir) = self.check_dir()? else {
            return Ok(None);
        };
        self.locked_in(&dir, work).map(Some)
    }

    /// Runs `work` holding the write lock of the checked directory.
    fn locked_in<T>(
        &self,
        dir: &Metadata,
        work: impl FnOnce(&Metadata) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (file, path) = open_lock(&self.dir)
            .map_err(|e| io_failed("cannot open the token store's lock", &self.dir, &e))?;
        // std's `File::lock`: `flock` on Unix, `LockFileEx` on Windows;
        // released when `file` is closed, after `work`.
        file.lock()
            .map_err(|e| io_failed("cannot lock the token store", &path, &e))?;
        let done = work(dir);
        drop(file);
        done
    }

    /// `dir`'s metadata once it is known to be a real directory (not a
    /// symbolic link) that only the current user can enter; `None` when
    /// it does not exist.
    fn check_dir(&self) -> Result<Option<Metadata>, Error> {
        check_dir(&self.dir, || self.current_uid())
    }

    /// The current user, from a probe file created the first time only.
    #[cfg(unix)]
    fn current_uid(&self) -> Result<u32, Error> {
        if let Some(&uid) = self.shared.uid.get() {
            return Ok(uid);
        }
        let uid = current_uid(&self.dir)?;
        Ok(*self.shared.uid.get_or_init(|| uid))
    }

    #[cfg(not(unix))]
    fn current_uid(&self) -> Result<u32, Error> {
        Ok(0)
    }

    fn save(&self, token: &StoredToken) -> Result<(), Error> {
        self.save_if(token, None).map(drop)
    }

    /// Saves `token` if `condition` (none: always) allows it over what is
    /// stored: whether it was written. The token is written to a temporary
    /// file and flushed to disk first; only the read, the compare and the
    /// rename hold the lock, so writers of other keys flush meanwhile.
    fn save_if(&self, token: &StoredToken, condition: Option<&OwnedSaveIf>) -> Result<bool, Error> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(token).map_err(|e| Error::new(ErrorKind::Store).with_source(e))?,
        );
        if bytes.len() > MAX_STORED_TOKEN_BYTES {
            return Err(too_large("the token", &self.path));
        }
        create_private_dir(&self.dir)
            .map_err(|e| io_failed("cannot create the token directory", &self.dir, &e))?;
        let dir = self
            .check_dir()?
            .ok_or_else(|| refused("the token directory vanished", &self.dir))?;
        let written = |e: io::Error| io_failed("cannot write the token file", &self.path, &e);
        let mut temp = TempFile::create(&self.dir).map_err(written)?;
        temp.file.write_all(&bytes).map_err(written)?;
        temp.file.sync_all().map_err(written)?;
        let saved = self.locked_in(&dir, |dir| {
            let allowed = match condition {
                None => true,
                Some(condition) => condition.allows(self.load_in(dir)?.as_ref(), token),
            };
            if allowed {
                temp.rename(&self.path).map_err(written)?;
                self.remove(false)?;
            }
            Ok(allowed)
        })?;
        if saved {
            // Make the rename itself durable.
            if let Ok(dir) = File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            self.sweep(&dir);
        }
        Ok(saved)
    }

    /// Removes stale temporary files if this store has not looked for
    /// them in the last [`STALE_TEMP_AGE`].
    fn sweep(&self, dir: &Metadata) {
        let due = {
            let mut swept = self
                .shared
                .swept
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = swept.is_none_or(|at| at.elapsed() >= STALE_TEMP_AGE);
            if due {
                *swept = Some(Instant::now());
            }
            due
        };
        if due {
            remove_stale_temp_files(&self.dir, dir);
        }
    }

    fn load_in(&self, dir: &Metadata) -> Result<Option<StoredToken>, Error> {
        for path in std::iter::once(&self.path).chain(&self.legacy) {
            if let Some(token) = read_token(path, dir)? {
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    fn clear(&self, expected: Option<&Secret>) -> Result<(), Error> {
        self.locked(false, |dir| {
            if expected.is_some()
                && !self
                    .load_in(dir)?
                    .is_some_and(|stored| stored.is_cleared_by(expected))
            {
                return Ok(());
            }
            self.remove(true)
        })
        .map(drop)
    }

    /// Removes the key's files (a missing one is no error).
    fn remove(&self, with_current: bool) -> Result<(), Error> {
        let current = with_current.then_some(&self.path);
        for path in current.into_iter().chain(&self.legacy) {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_failed("cannot remove the token file", path, &e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A [`SaveIf`] the blocking task can own.
enum OwnedSaveIf {
    NotNewer,
    Holds(Vec<Secret>, bool),
}

impl OwnedSaveIf {
    fn allows(&self, stored: Option<&StoredToken>, token: &StoredToken) -> bool {
        match self {
            Self::NotNewer => SaveIf::NotNewer.allows(stored, token),
            Self::Holds(tokens, or_nothing) => {
                let access_tokens: Vec<&Secret> = tokens.iter().collect();
                SaveIf::Holds {
                    access_tokens: &access_tokens,
                    or_nothing: *or_nothing,
                }
                .allows(stored, token)
            }
        }
    }

    fn of(condition: SaveIf<'_>) -> Self {
        match condition {
            SaveIf::NotNewer => Self::NotNewer,
            SaveIf::Holds {
                access_tokens,
                or_nothing,
            } => Self::Holds(
                access_tokens.iter().map(|&s| s.clone()).collect(),
                or_nothing,
            ),
        }
    }
}

/// What a write locks, and its path: on Unix the (checked) directory
/// itself, never through a symbolic link.
#[cfg(unix)]
fn open_lock(dir: &Path) -> io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)?;
    Ok((file, dir.to_owned()))
}

/// Elsewhere the directory's lock file, created if missing.
#[cfg(not(unix))]
fn open_lock(dir: &Path) -> io::Result<(File, PathBuf)> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    Ok((file, path))
}

/// `dir`'s metadata once it is known to be a real directory (not a
/// symbolic link) that only the current user (`uid`) can enter; `None`
/// when it does not exist.
fn check_dir(
    dir: &Path,
    #[cfg_attr(not(unix), allow(unused_variables))] uid: impl FnOnce() -> Result<u32, Error>,
) -> Result<Option<Metadata>, Error> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_failed("cannot inspect the token directory", dir, &e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(
            "the token directory is a symbolic link; configure the directory it points to",
            dir,
        ));
    }
    if !meta.is_dir() {
        return Err(refused("the token directory is not a directory", dir));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refused(
                format_args!(
                    "the token directory is open to other users (mode {mode:03o}); run chmod 700 on it"
                ),
                dir,
            ));
        }
        let uid = uid()?;
        check_owner("the token directory", meta.uid(), uid, dir)?;
    }
    Ok(Some(meta))
}

/// Refuses `what` at `path`, owned by `owner`, unless that is `uid`.
#[cfg(unix)]
fn check_owner(what: &str, owner: u32, uid: u32, path: &Path) -> Result<(), Error> {
    if owner == uid {
        return Ok(());
    }
    Err(refused(
        format_args!(
            "{what} is owned by uid {owner}, not by this user (uid {uid}); use a directory of your own"
        ),
        path,
    ))
}

/// The current effective user id, read off a file created in `dir` (there
/// is no safe `geteuid`).
#[cfg(unix)]
fn current_uid(dir: &Path) -> Result<u32, Error> {
    use std::os::unix::fs::MetadataExt as _;
    TempFile::create(dir)
        .and_then(|probe| probe.file.metadata())
        .map(|meta| meta.uid())
        .map_err(|e| io_failed("cannot create a file in the token directory", dir, &e))
}

/// The token in `path`, refusing anything but a regular file of the
/// directory's owner within the size bound.
fn read_token(path: &Path, dir: &Metadata) -> Result<Option<StoredToken>, Error> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            return Err(refused(
                "the token file is a symbolic link; remove it",
                path,
            ));
        }
        Err(e) => return Err(io_failed("cannot open the token file", path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| io_failed("cannot inspect the token file", path, &e))?;
    if !meta.is_file() {
        return Err(refused(
            "the token file is not a regular file; remove it",
            path,
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        check_owner("the token file", meta.uid(), dir.uid(), path)?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    if meta.len() > MAX_STORED_TOKEN_BYTES as u64 {
        return Err(too_large("the token file", path));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_STORED_TOKEN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_failed("cannot read the token file", path, &e))?;
    if bytes.len() > MAX_STORED_TOKEN_BYTES {
        return Err(too_large("the token file", path));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        refused(
            format_args!(
                "the token file is not a stored token (line {}, column {})",
                e.line(),
                e.column()
            ),
            path,
        )
    })
}

/// Opens `path` for reading without following a symbolic link and without
/// blocking on a FIFO.
#[cfg(unix)]
fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> io::Result<File> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::other("a symbolic link"));
    }
    File::open(path)
}

/// A `.tmp-<pid>-<random>` file in the token directory, created owner-only
/// and never through an existing name; removed when dropped unless renamed
/// into place.
struct TempFile {
    path: PathBuf,
    file: File,
    renamed: bool,
}

impl TempFile {
    fn create(dir: &Path) -> io::Result<Self> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let path = dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            u64::from_le_bytes(random)
        ));
        let file = create_private_file(&path)?;
        Ok(Self {
            path,
            file,
            renamed: false,
        })
    }

    fn rename(&mut self, to: &Path) -> io::Result<()> {
        fs::rename(&self.path, to)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether `name` is one of our temporary files: `.tmp-<digits>-<digits>`.
fn is_temp_file_name(name: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, random)| digits(pid) && digits(random))
}

/// Removes the temporary files in `dir` that writers which died mid-save
/// left behind (each may hold a token): only regular files named like ours,
/// of the directory's owner, older than [`STALE_TEMP_AGE`], so a live
/// writer's file is never touched. Best effort: a failure only leaves a
/// file for the next save.
fn remove_stale_temp_files(dir: &Path, owner: &Metadata) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_temp_file_name) {
            continue;
        }
        // `DirEntry::metadata` does not follow symbolic links.
        let stale = entry.metadata().is_ok_and(|meta| {
            meta.is_file()
                && same_owner(&meta, owner)
                && meta
                    .modified()
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP_AGE)
        });
        if stale && fs::remove_file(entry.path()).is_ok() {
            tracing::debug!(file = %entry.path().display(), "removed a stale temporary token file");
        }
    }
}

#[cfg(unix)]
fn same_owner(meta: &Metadata, other: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    meta.uid() == other.uid()
}

#[cfg(not(unix))]
fn same_owner(_: &Metadata, _: &Metadata) -> bool {
    true
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<File> {
    File::options().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        let files = self.files(key);
        Box::pin(self.blocking(move || files.load()))
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let (files, token) = (self.files(key), token.clone());
        Box::pin(self.blocking(move || files.save(&token)))
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let (files, expected) = (self.files(key), if_refresh_token.cloned());
        Box::pin(self.blocking(move || files.clear(expected.as_ref())))
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let (files, token, condition) =
            (self.files(key), token.clone(), OwnedSaveIf::of(condition));
        Box::pin(self.blocking(move || files.save_if(&token, Some(&condition))))
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
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file nor lock file is left behind"
        );
    }

    /// `writers` stores on one directory (each its own `FileStore`, its
    /// own file handles, as separate processes have), racing from one
    /// barrier on blocking threads.
    fn race<T: Send + 'static>(
        writers: usize,
        work: impl Fn(usize, FileStore) -> T + Send + Sync + 'static,
        dir: &Path,
    ) -> Vec<T> {
        let work = std::sync::Arc::new(work);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let (work, barrier) = (work.clone(), barrier.clone());
                let store = FileStore::new(dir);
                std::thread::spawn(move || {
                    barrier.wait();
                    work(i, store)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_compare_and_sets_from_one_base_let_exactly_one_writer_win() {
        let clock = ManualClock::new();
        let base = StoredToken::from_token(&token(&clock, "base", Some("r0")));
        let (dir, _) = saved_store("k", &base).await;
        let tokens = dir.path().join("tokens");
        for round in 0..20 {
            FileStore::new(&tokens).save("k", &base).await.unwrap();
            let wins = race(
                6,
                move |i, store| {
                    let clock = ManualClock::new();
                    let mine = StoredToken::from_token(&token(&clock, &format!("w{i}"), Some("r")));
                    let base = Secret::new("base");
                    let holds = SaveIf::Holds {
                        access_tokens: &[&base],
                        or_nothing: false,
                    };
                    block_on(store.save_if("k", &mine, holds))
                        .unwrap()
                        .then_some(mine)
                },
                &tokens,
            );
            let winners: Vec<_> = wins.into_iter().flatten().collect();
            assert_eq!(winners.len(), 1, "round {round}: one writer wins");
            let stored = FileStore::new(&tokens).load("k").await.unwrap();
            assert_eq!(stored.as_ref(), winners.first(), "round {round}");
        }
    }

    /// Set in a child process of
    /// `compare_and_sets_in_separate_processes_let_exactly_one_win`: the
    /// token directory and the writer's number.
    const RACER: &str = "PAYAUTH_TEST_FILE_STORE_RACER";

    #[test]
    fn compare_and_sets_in_separate_processes_let_exactly_one_win() {
        const NAME: &str =
            "store::file::tests::compare_and_sets_in_separate_processes_let_exactly_one_win";
        if let Ok(racer) = std::env::var(RACER) {
            // A child: wait for the start, then try one compare-and-set.
            let (dir, id) = racer.split_once('|').unwrap();
            let dir = Path::new(dir);
            while !dir.join("go").exists() {
                std::thread::yield_now();
            }
            let clock = ManualClock::new();
            let mine = StoredToken::from_token(&token(&clock, &format!("p{id}"), Some("r")));
            let base = Secret::new("base");
            let holds = SaveIf::Holds {
                access_tokens: &[&base],
                or_nothing: false,
            };
            if block_on(FileStore::new(dir.join("tokens")).save_if("k", &mine, holds)).unwrap() {
                // Its own line: libtest's "test … " may precede it.
                println!("\nRACER-WON-p{id}");
            }
            return;
        }
        let clock = ManualClock::new();
        let base = StoredToken::from_token(&token(&clock, "base", Some("r0")));
        for round in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            block_on(FileStore::new(dir.path().join("tokens")).save("k", &base)).unwrap();
            let children: Vec<_> = (0..4)
                .map(|id| {
                    std::process::Command::new(std::env::current_exe().unwrap())
                        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
                        .env(RACER, format!("{}|{id}", dir.path().display()))
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            std::fs::write(dir.path().join("go"), b"").unwrap();
            let winners: Vec<String> = children
                .into_iter()
                .flat_map(|child| {
                    let out = child.wait_with_output().unwrap();
                    assert!(out.status.success());
                    String::from_utf8(out.stdout)
                        .unwrap()
                        .lines()
                        .filter_map(|l| l.split_once("RACER-WON-").map(|(_, w)| w.to_owned()))
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            let stored = block_on(FileStore::new(dir.path().join("tokens")).load("k"))
                .unwrap()
                .unwrap();
            assert_eq!(stored.access_token.as_secret().expose_secret(), winners[0]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_saved_while_a_conditional_clear_runs_is_never_removed() {
        let clock = ManualClock::new();
        let old = StoredToken::from_token(&token(&clock, "old", Some("r-old")));
        let (dir, _) = saved_store("k", &old).await;
        let tokens = dir.path().join("tokens");
        for round in 0..30 {
            FileStore::new(&tokens).save("k", &old).await.unwrap();
            // Writer 0 clears `old` (refused); the others save a login
            // over `old`.
            let outcomes = race(
                4,
                move |i, store| {
                    if i == 0 {
                        block_on(store.clear("k", Some(&Secret::new("r-old")))).unwrap();
                        return None;
                    }
                    let clock = ManualClock::new();
                    let login = StoredToken::from_token(&token(&clock, &format!("login{i}"), None));
                    let old = Secret::new("old");
                    let holds = SaveIf::Holds {
                        access_tokens: &[&old],
                        or_nothing: false,
                    };
                    block_on(store.save_if("k", &login, holds))
                        .unwrap()
                        .then_some(login)
                },
                &tokens,
            );
            let saved: Vec<_> = outcomes.into_iter().flatten().collect();
            let stored = FileStore::new(&tokens).load("k").await.unwrap();
            assert!(saved.len() <= 1, "round {round}");
            assert_eq!(
                stored.as_ref(),
                saved.first(),
                "round {round}: a login written survives"
            );
        }
    }

    #[tokio::test]
    async fn check_writable_creates_a_private_directory_and_refuses_one_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("a/tokens"));
        store.check_writable().await.unwrap();
        assert!(dir.path().join("a/tokens").is_dir());
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        for unusable in [file.clone(), file.join("tokens")] {
            let error = FileStore::new(&unusable)
                .check_writable()
                .await
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store, "{unusable:?}");
        }
    }

    #[tokio::test]
    async fn a_crash_mid_write_leaves_the_old_token_readable() {
        let clock = ManualClock::new();
        let old = StoredToken::from_token(&token(&clock, "old", None));
        let (dir, store) = saved_store("k", &old).await;
        // A crash after writing part of the temporary file, before rename:
        std::fs::write(dir.path().join("tokens/.tmp-1-2"), b"{\"access_tok").unwrap();
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

    /// The store `FileStore::new(<tempdir>/tokens)`, with the tempdir that
    /// holds it, after one save (so its directory exists).
    async fn saved_store(key: &str, stored: &StoredToken) -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        store.save(key, stored).await.unwrap();
        (dir, store)
    }

    fn file_name_of(store: &FileStore, key: &str) -> String {
        store
            .path(key)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn a_key_of_any_length_maps_to_a_short_file_name_that_saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let clock = ManualClock::new();
        let mut keys: Vec<String> = [0, 1, 64, 65, 125, 126, 255, 4096, 100_000]
            .into_iter()
            .map(|len| "k".repeat(len))
            .collect();
        keys.push("é/ü:{}\0\n".repeat(40));
        for key in &keys {
            let stored = StoredToken::from_token(&token(&clock, "a", Some(&key.len().to_string())));
            store.save(key, &stored).await.unwrap();
            assert_eq!(
                store.load(key).await.unwrap(),
                Some(stored),
                "{} bytes",
                key.len()
            );
            assert!(
                file_name_of(&store, key).len() <= 143,
                "{} bytes make a {}-byte name",
                key.len(),
                file_name_of(&store, key).len()
            );
        }
    }

    #[test]
    fn no_two_keys_share_a_file_name_and_none_looks_like_a_temp_file() {
        let store = FileStore::new("/unused");
        let long = "x".repeat(200);
        let mut keys = vec![
            String::new(),
            "a".to_owned(),
            "k".repeat(64),
            "k".repeat(65),
            "k".repeat(125),
            "k".repeat(126),
            long.clone(),
            format!("{long}y"),
            ".tmp-1-2".to_owned(),
        ];
        // A short key spelling what a long key's name would be.
        keys.push(file_name_of(&store, &long));
        let names: std::collections::HashSet<_> =
            keys.iter().map(|key| file_name_of(&store, key)).collect();
        assert_eq!(names.len(), keys.len(), "{names:?}");
        for name in &names {
            assert!(
                !name.starts_with(TEMP_PREFIX) && name.strip_suffix(".json").is_some(),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_saved_under_the_old_hex_name_is_still_found() {
        let clock = ManualClock::new();
        let old = StoredToken::from_token(&token(&clock, "old", Some("r-old")));
        for key in ["mypos/client", &"k".repeat(100), &"k".repeat(125)] {
            let (dir, store) = saved_store("other", &old).await;
            let legacy = dir.path().join("tokens").join(format!(
                "{}.json",
                crate::internal::hex::encode_lower(key.as_bytes())
            ));
            std::fs::write(&legacy, serde_json::to_vec(&old).unwrap()).unwrap();
            assert_eq!(store.load(key).await.unwrap(), Some(old.clone()), "{key}");
            let new = StoredToken::from_token(&token(&clock, "new", Some("r-new")));
            store.save(key, &new).await.unwrap();
            assert_eq!(store.load(key).await.unwrap(), Some(new), "{key}");
            assert_eq!(
                legacy.exists(),
                key.len() <= MAX_HEX_KEY,
                "{key}: a long key's old file is moved to its new name"
            );
            store.clear(key, None).await.unwrap();
            assert_eq!(
                store.load(key).await.unwrap(),
                None,
                "{key}: no old file is left"
            );
        }
    }

    #[tokio::test]
    async fn a_store_error_names_its_cause_even_under_a_long_path() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(200)).join("e".repeat(200));
        std::fs::create_dir_all(&deep).unwrap();
        // The configured directory is a file.
        std::fs::write(deep.join("tokens"), b"not a directory").unwrap();
        let store = FileStore::new(deep.join("tokens"));
        let clock = ManualClock::new();
        let saved = store
            .save(
                "k",
                &StoredToken::from_token(&token(&clock, SENTINEL, None)),
            )
            .await
            .unwrap_err();
        let loaded = store.load("k").await.unwrap_err();
        for error in [saved, loaded] {
            assert_eq!(error.kind(), ErrorKind::Store);
            assert!(error.to_string().contains("not a directory"), "{error}");
            assert!(!error.to_string().contains(SENTINEL));
        }
    }

    #[tokio::test]
    async fn a_token_file_too_large_to_read_is_a_typed_error_without_reading_it() {
        let clock = ManualClock::new();
        let (_dir, store) =
            saved_store("k", &StoredToken::from_token(&token(&clock, "a", None))).await;
        // A 200 MB file (sparse: nothing is written).
        std::fs::OpenOptions::new()
            .write(true)
            .open(store.path("k"))
            .unwrap()
            .set_len(200 << 20)
            .unwrap();
        let error = store.load("k").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(error.to_string().contains("larger than"), "{error}");
    }

    #[tokio::test]
    async fn a_token_too_large_to_read_back_is_refused_on_save() {
        let clock = ManualClock::new();
        let huge = "h".repeat(crate::store::MAX_STORED_TOKEN_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let error = store
            .save("k", &StoredToken::from_token(&token(&clock, &huge, None)))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(error.to_string().contains("larger than"), "{error}");
        assert_eq!(store.load("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_stores_first_save_removes_stale_temp_files_and_nothing_else_and_later_saves_do_not_list_the_folder()
     {
        let clock = ManualClock::new();
        let stored = StoredToken::from_token(&token(&clock, "a", None));
        let (dir, store) = saved_store("k", &stored).await;
        let tokens = dir.path().join("tokens");
        let plant = |name: &str, age_secs: u64| {
            let path = tokens.join(name);
            std::fs::write(&path, SENTINEL).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(std::time::SystemTime::now() - Duration::from_secs(age_secs))
                .unwrap();
            path
        };
        // Writers killed mid-save a day and 11 minutes ago; one writing
        // now, and a slow one that started 5 minutes ago.
        let stale = [plant(".tmp-123-456", 86_400), plant(".tmp-5-6", 11 * 60)];
        let live = [plant(".tmp-789-1011", 0), plant(".tmp-7-8", 5 * 60)];
        // Not ours: kept whatever their age.
        let foreign = [
            plant(".tmp-notours", 86_400),
            plant(".tmp-1-2-3", 86_400),
            plant("notes.txt", 86_400),
        ];
        #[cfg(unix)]
        let others = plant(".tmp-9-9", 86_400);
        #[cfg(unix)]
        let chowned = std::os::unix::fs::chown(&others, Some(65_534), None).is_ok();
        store.save("k", &stored).await.unwrap();
        assert!(
            stale.iter().all(|path| path.exists()),
            "a store looks for stale files once per {STALE_TEMP_AGE:?}, not on every save"
        );
        // A process started after the writers died: its first save looks.
        FileStore::new(&tokens).save("k", &stored).await.unwrap();
        for path in stale {
            assert!(
                !path.exists(),
                "a stale temp file holding a token is removed"
            );
        }
        for path in live.iter().chain(&foreign) {
            assert!(path.exists(), "{}", path.display());
        }
        #[cfg(unix)]
        assert_eq!(
            others.exists(),
            chowned,
            "another user's file is not ours to remove"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_bound_of_operations_run_at_once_however_many_callers_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let clock = ManualClock::new();
        let stored = StoredToken::from_token(&token(&clock, "a", Some("r")));
        let calls = (0..400).map(|i| {
            let (store, stored) = (store.clone(), stored.clone());
            tokio::spawn(async move {
                let key = format!("k{}", i % 40);
                match i % 3 {
                    0 => store.save(&key, &stored).await,
                    1 => store.load(&key).await.map(drop),
                    _ => store
                        .save_if(&key, &stored, SaveIf::NotNewer)
                        .await
                        .map(drop),
                }
            })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.unwrap().unwrap();
        }
        let most = store
            .shared
            .most_running
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=FileStore::CONCURRENCY).contains(&most),
            "{most} operations ran at once"
        );
    }

    #[tokio::test]
    async fn a_save_cancelled_while_waiting_for_its_turn_never_runs_and_flush_reports_it_unsaved() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let clock = Arc::new(ManualClock::new());
        let seeded = token(&clock, SENTINEL, Some("rotated"));
        let cache = crate::TokenCache::builder(Unreachable)
            .clock(Arc::clone(&clock) as Arc<dyn crate::Clock>)
            .store(Arc::new(store.clone()), "k")
            .fetch_timeout(crate::cache::MIN_FETCH_TIMEOUT)
            .seed(seeded)
            .build();
        // Every turn taken, as by thousands of other caches saving.
        let turns = Arc::clone(&store.shared.permits)
            .acquire_many_owned(u32::try_from(FileStore::CONCURRENCY).unwrap())
            .await
            .unwrap();
        let error = cache.flush().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store, "{error}");
        drop(turns);
        assert_eq!(
            store.load("k").await.unwrap(),
            None,
            "the cancelled save never ran later"
        );
        cache.flush().await.unwrap();
        let saved = store.load("k").await.unwrap().unwrap();
        assert_eq!(saved.access_token.expose_secret(), SENTINEL);
    }

    #[cfg(feature = "subjects")]
    #[tokio::test]
    async fn subjects_evicted_while_every_turn_is_taken_are_reported_unsaved_then_saved() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("tokens"));
        let clock = Arc::new(ManualClock::new());
        let (shared, seeds) = (store.clone(), Arc::clone(&clock));
        let subjects = crate::subjects::Subjects::builder(move |customer: &String| {
            crate::TokenCache::builder(Unreachable)
                .clock(Arc::clone(&seeds) as Arc<dyn crate::Clock>)
                .store(Arc::new(shared.clone()), customer.clone())
                .fetch_timeout(crate::cache::MIN_FETCH_TIMEOUT)
                .seed(token(&seeds, &format!("a-{customer}"), Some("rotated")))
                .build()
        })
        .capacity(1)
        .build();
        let turns = Arc::clone(&store.shared.permits)
            .acquire_many_owned(u32::try_from(FileStore::CONCURRENCY).unwrap())
            .await
            .unwrap();
        let customers = ["c1", "c2", "c3"].map(String::from);
        for customer in &customers {
            subjects.token(customer).await.unwrap();
        }
        assert!(subjects.len() < customers.len(), "some were evicted");
        let error = subjects.flush().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store, "{error}");
        drop(turns);
        subjects.flush().await.unwrap();
        for customer in &customers {
            let saved = store.load(customer).await.unwrap().expect(customer);
            assert_eq!(saved.access_token.expose_secret(), format!("a-{customer}"));
        }
    }

    /// A source a test never reaches.
    struct Unreachable;

    impl crate::TokenSource for Unreachable {
        fn fetch<'a>(
            &'a self,
            _: Option<&'a AccessToken>,
        ) -> BoxFuture<'a, Result<AccessToken, Error>> {
            unreachable!("the test never fetches")
        }
    }

    #[tokio::test]
    async fn a_token_of_exactly_the_size_limit_saves_and_loads_and_one_byte_more_does_not() {
        let clock = ManualClock::new();
        let with_access = |access: &str| StoredToken::from_token(&token(&clock, access, None));
        let overhead = serde_json::to_vec(&with_access("a")).unwrap().len() - 1;
        let fits = with_access(&"a".repeat(MAX_STORED_TOKEN_BYTES - overhead));
        assert_eq!(
            serde_json::to_vec(&fits).unwrap().len(),
            MAX_STORED_TOKEN_BYTES
        );
        let (_dir, store) = saved_store("k", &fits).await;
        assert_eq!(store.load("k").await.unwrap(), Some(fits));
        // A fat JWT of 32 KiB is far within the limit.
        let jwt = with_access(&"j".repeat(32 * 1024));
        store.save("jwt", &jwt).await.unwrap();
        assert_eq!(store.load("jwt").await.unwrap(), Some(jwt));
        let over = with_access(&"a".repeat(MAX_STORED_TOKEN_BYTES - overhead + 1));
        assert!(store.save("k", &over).await.is_err());
        // Nor is such a file read, however it got there.
        std::fs::write(store.path("k"), serde_json::to_vec(&over).unwrap()).unwrap();
        assert!(store.load("k").await.is_err());
    }

    #[tokio::test]
    async fn a_directory_under_a_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let store = FileStore::new(file.join("tokens"));
        let loaded = store.load("k").await.unwrap_err();
        assert!(
            loaded
                .to_string()
                .contains("cannot inspect the token directory: not a directory"),
            "{loaded}"
        );
        let clock = ManualClock::new();
        let saved = store
            .save("k", &StoredToken::from_token(&token(&clock, "a", None)))
            .await
            .unwrap_err();
        assert!(
            saved
                .to_string()
                .contains("cannot create the token directory: not a directory"),
            "{saved}"
        );
    }

    #[cfg(unix)]
    mod hostile {
        //! What another local user can plant, and what a writer of our own
        //! may leave behind.

        use std::os::unix::fs::{PermissionsExt as _, symlink};

        use super::*;

        #[tokio::test]
        async fn a_symlinked_token_file_is_refused_on_load() {
            let clock = ManualClock::new();
            let (dir, store) =
                saved_store("k", &StoredToken::from_token(&token(&clock, "mine", None))).await;
            // Someone else's token, linked in place of ours.
            let planted = dir.path().join("planted.json");
            let theirs = StoredToken::from_token(&token(&clock, SENTINEL, None));
            std::fs::write(&planted, serde_json::to_vec(&theirs).unwrap()).unwrap();
            std::fs::remove_file(store.path("k")).unwrap();
            symlink(&planted, store.path("k")).unwrap();
            let error = store.load("k").await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store);
            assert!(error.to_string().contains("symbolic link"), "{error}");
            assert!(!error.to_string().contains(SENTINEL));
        }

        #[tokio::test]
        async fn a_save_replaces_a_planted_symlink_and_never_writes_through_it() {
            let clock = ManualClock::new();
            let mine = StoredToken::from_token(&token(&clock, "mine", None));
            let (dir, store) = saved_store("k", &mine).await;
            let target = dir.path().join("target");
            std::fs::write(&target, b"untouched").unwrap();
            std::fs::remove_file(store.path("k")).unwrap();
            symlink(&target, store.path("k")).unwrap();
            store.save("k", &mine).await.unwrap();
            assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
            assert!(
                std::fs::symlink_metadata(store.path("k"))
                    .unwrap()
                    .file_type()
                    .is_file()
            );
            assert_eq!(store.load("k").await.unwrap(), Some(mine));
        }

        #[tokio::test]
        async fn a_fifo_or_a_directory_in_place_of_a_token_file_is_refused_at_once() {
            let clock = ManualClock::new();
            let (_dir, store) =
                saved_store("other", &StoredToken::from_token(&token(&clock, "a", None))).await;
            let fifo = store.path("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(made.success());
            // Were the FIFO opened for reading, this opens it for writing
            // after a while and lets the read end.
            let unblock = fifo.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                let _ = std::fs::File::options()
                    .read(true)
                    .write(true)
                    .open(unblock);
            });
            std::fs::create_dir(store.path("dir")).unwrap();
            // And a clear cannot remove a directory: an error, not a no-op.
            assert!(store.clear("dir", None).await.is_err());
            for key in ["fifo", "dir"] {
                let started = std::time::Instant::now();
                let error = store.load(key).await.unwrap_err();
                assert!(started.elapsed() < Duration::from_secs(1), "{key} blocked");
                assert_eq!(error.kind(), ErrorKind::Store);
                assert!(
                    error.to_string().contains("not a regular file"),
                    "{key}: {error}"
                );
            }
        }

        #[tokio::test]
        async fn a_socket_in_place_of_a_token_file_is_an_open_error_not_a_symlink() {
            let clock = ManualClock::new();
            let (_dir, store) =
                saved_store("other", &StoredToken::from_token(&token(&clock, "a", None))).await;
            let _listener = std::os::unix::net::UnixListener::bind(store.path("socket")).unwrap();
            let error = store.load("socket").await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store);
            assert!(
                error.to_string().contains("cannot open the token file"),
                "{error}"
            );
        }

        #[tokio::test]
        async fn a_token_directory_open_to_other_users_is_refused_with_what_to_fix() {
            let clock = ManualClock::new();
            let stored = StoredToken::from_token(&token(&clock, "a", None));
            let (dir, store) = saved_store("k", &stored).await;
            let tokens = dir.path().join("tokens");
            for mode in [0o755, 0o770, 0o701, 0o702] {
                std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(mode)).unwrap();
                let loaded = store.load("k").await.unwrap_err();
                let saved = store.save("k", &stored).await.unwrap_err();
                for error in [loaded, saved] {
                    assert_eq!(error.kind(), ErrorKind::Store);
                    assert!(error.to_string().contains("chmod 700"), "{mode:o}: {error}");
                }
            }
        }

        #[tokio::test]
        async fn a_symlinked_token_directory_is_refused() {
            let clock = ManualClock::new();
            let stored = StoredToken::from_token(&token(&clock, "a", None));
            let (dir, _store) = saved_store("k", &stored).await;
            let link = dir.path().join("link");
            symlink(dir.path().join("tokens"), &link).unwrap();
            let store = FileStore::new(&link);
            for error in [
                store.load("k").await.unwrap_err(),
                store.save("k", &stored).await.unwrap_err(),
            ] {
                assert_eq!(error.kind(), ErrorKind::Store);
                assert!(error.to_string().contains("symbolic link"), "{error}");
            }
        }

        #[test]
        fn an_owner_other_than_the_expected_user_is_refused_with_what_to_fix() {
            let path = Path::new("/some/dir");
            assert!(check_owner("the token directory", 1000, 1000, path).is_ok());
            let error = check_owner("the token directory", 1001, 1000, path).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Store);
            assert!(
                error
                    .to_string()
                    .starts_with("token store error: the token directory is owned by uid 1001, not by this user (uid 1000)"),
                "{error}"
            );
        }

        #[tokio::test]
        async fn a_token_directory_or_file_owned_by_another_user_is_refused() {
            let clock = ManualClock::new();
            let stored = StoredToken::from_token(&token(&clock, "a", None));
            let (dir, store) = saved_store("k", &stored).await;
            let tokens = dir.path().join("tokens");
            let nobody = 65_534;
            if std::os::unix::fs::chown(store.path("k"), Some(nobody), None).is_err() {
                eprintln!("SKIPPED: changing owners needs root");
                return;
            }
            let error = store.load("k").await.unwrap_err();
            assert!(error.to_string().contains("owned by"), "{error}");
            std::fs::remove_file(store.path("k")).unwrap();
            std::os::unix::fs::chown(&tokens, Some(nobody), None).unwrap();
            for error in [
                store.load("k").await.unwrap_err(),
                store.save("k", &stored).await.unwrap_err(),
            ] {
                assert_eq!(error.kind(), ErrorKind::Store);
                assert!(error.to_string().contains("owned by"), "{error}");
            }
        }
    }
}
