//! The local filesystem as an object store. Conditional puts are atomic and
//! safe between processes: an OS lock on a per-key lock file guards the
//! check, the body goes to a temp file, and a rename publishes it.

use super::{Condition, ObjectMeta, StoreError};
use chrono::{DateTime, Utc};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An object store rooted at a directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

const LOCK_SUFFIX: &str = ".curlew-lock";
const TMP_MARK: &str = ".curlew-tmp-";

fn io(key: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound {
            key: key.to_owned(),
        }
    } else {
        StoreError::Io {
            key: key.to_owned(),
            source: e,
        }
    }
}

fn meta_of(key: &str, m: &fs::Metadata) -> ObjectMeta {
    let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let nanos = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    let ino = 0u64;
    ObjectMeta {
        key: key.to_owned(),
        size: m.len(),
        etag: format!("\"{:x}-{:x}-{:x}\"", m.len(), nanos, ino),
        last_modified: DateTime::<Utc>::from(mtime),
    }
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key` (empty segments from doubled slashes are skipped).
    pub fn path(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        for seg in key.split('/').filter(|s| !s.is_empty()) {
            p.push(seg);
        }
        p
    }

    pub fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let m = fs::metadata(self.path(key)).map_err(|e| io(key, e))?;
        if m.is_dir() {
            return Err(StoreError::NotFound {
                key: key.to_owned(),
            });
        }
        Ok(meta_of(key, &m))
    }

    pub fn get(&self, key: &str) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        let f = fs::File::open(self.path(key)).map_err(|e| io(key, e))?;
        let m = f.metadata().map_err(|e| io(key, e))?;
        Ok((meta_of(key, &m), Box::new(f)))
    }

    pub fn get_if_match(
        &self,
        key: &str,
        etag: &str,
    ) -> Result<(ObjectMeta, Box<dyn Read + Send>), StoreError> {
        let (meta, r) = self.get(key)?;
        if meta.etag != etag {
            return Err(StoreError::PreconditionFailed {
                key: key.to_owned(),
            });
        }
        Ok((meta, r))
    }

    pub fn get_bytes(&self, key: &str) -> Result<(ObjectMeta, Vec<u8>), StoreError> {
        let (meta, mut r) = self.get(key)?;
        let mut buf = Vec::with_capacity(meta.size as usize);
        r.read_to_end(&mut buf).map_err(|e| io(key, e))?;
        Ok((meta, buf))
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        // Walk from the deepest directory the prefix names, then filter by the full prefix.
        let norm: String = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let dir_part = match norm.rfind('/') {
            Some(i) if !prefix.ends_with('/') => &norm[..i],
            _ if prefix.ends_with('/') => norm.as_str(),
            _ => "",
        };
        let start = self.path(dir_part);
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&rel, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io(&rel, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(LOCK_SUFFIX) || name.contains(TMP_MARK) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ft = entry.file_type().map_err(|e| io(&key, e))?;
                if ft.is_dir() {
                    stack.push((entry.path(), key));
                } else if key.starts_with(&norm) {
                    let m = entry.metadata().map_err(|e| io(&key, e))?;
                    out.push(meta_of(&key, &m));
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub fn put(&self, key: &str, body: &[u8], cond: Condition<'_>) -> Result<String, StoreError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io(key, e))?;
        }
        let tmp = path.with_file_name(format!(
            "{}{}{}-{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            TMP_MARK,
            std::process::id(),
            fastrand::u64(..)
        ));
        {
            let mut f = fs::File::create(&tmp).map_err(|e| io(key, e))?;
            f.write_all(body).map_err(|e| io(key, e))?;
            f.sync_all().map_err(|e| io(key, e))?;
        }
        let result = match cond {
            Condition::None => fs::rename(&tmp, &path).map_err(|e| io(key, e)),
            Condition::Absent | Condition::Matches(_) => {
                let _lock = KeyLock::acquire(&path).map_err(|e| io(key, e))?;
                let current = match fs::metadata(&path) {
                    Ok(m) => Some(meta_of(key, &m).etag),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(io(key, e)),
                };
                let ok = match (cond, &current) {
                    (Condition::Absent, None) => true,
                    (Condition::Matches(want), Some(have)) => want == have,
                    _ => false,
                };
                if ok {
                    fs::rename(&tmp, &path).map_err(|e| io(key, e))
                } else {
                    Err(StoreError::PreconditionFailed {
                        key: key.to_owned(),
                    })
                }
            }
        };
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        Ok(self.head(key)?.etag)
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(key, e)),
        }
    }
}

/// An inter-process lock on one key: the OS's exclusive lock (flock) on a
/// lock file beside it. The kernel releases it when its holder exits or
/// crashes, so there is no stale lock to break (breaking one by its age let
/// a second writer in beside a slow first). The holder removes the file
/// while it still holds it; a waiter that then gets the lock of the removed
/// file sees the path no longer names it and tries again.
struct KeyLock {
    path: PathBuf,
    _file: fs::File,
}

impl KeyLock {
    fn acquire(path: &Path) -> std::io::Result<KeyLock> {
        use std::os::unix::fs::MetadataExt;
        let lock = path.with_file_name(format!(
            "{}{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            LOCK_SUFFIX
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock)?;
            match file.try_lock() {
                Ok(()) => {
                    let held = file.metadata()?;
                    let current = fs::metadata(&lock).ok();
                    if current.is_some_and(|c| (c.dev(), c.ino()) == (held.dev(), held.ino())) {
                        return Ok(KeyLock {
                            path: lock,
                            _file: file,
                        });
                    }
                    // The file we locked was removed by its last holder: again.
                }
                Err(fs::TryLockError::WouldBlock) => {
                    if std::time::Instant::now() > deadline {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "lock held too long",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Removed while still held; the lock goes with the file handle after.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_puts_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path());
        let e1 = s.put("a/CURRENT", b"1", Condition::Absent).unwrap();
        assert!(matches!(
            s.put("a/CURRENT", b"2", Condition::Absent),
            Err(StoreError::PreconditionFailed { .. })
        ));
        let e2 = s.put("a/CURRENT", b"2", Condition::Matches(&e1)).unwrap();
        assert_ne!(e1, e2);
        assert!(matches!(
            s.put("a/CURRENT", b"3", Condition::Matches(&e1)),
            Err(StoreError::PreconditionFailed { .. })
        ));
        assert_eq!(s.get_bytes("a/CURRENT").unwrap().1, b"2");
        let keys: Vec<String> = s.list("a/").unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, vec!["a/CURRENT".to_string()]);
        s.delete("a/CURRENT").unwrap();
        assert!(matches!(
            s.head("a/CURRENT"),
            Err(StoreError::NotFound { .. })
        ));
    }

    /// A writer that holds the lock longer than any age limit is not
    /// overtaken: the second waits until the first lets go. A lock file
    /// left by a crashed writer (no process holds it) is no obstacle.
    #[test]
    fn a_slow_holder_is_never_overtaken_and_a_crashed_ones_file_is_no_obstacle() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("CURRENT");
        let first = KeyLock::acquire(&key).unwrap();
        // The lock file looks an hour old (it was "stale" to the old rule).
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&first.path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (key, got) = (key.clone(), got.clone());
            std::thread::spawn(move || {
                let second = KeyLock::acquire(&key).unwrap();
                got.store(true, Ordering::SeqCst);
                drop(second);
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !got.load(Ordering::SeqCst),
            "the second writer got in beside the first"
        );
        drop(first);
        waiter.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        // A crashed writer's leftover file, held by nobody.
        let leftover = key.with_file_name(format!("CURRENT{LOCK_SUFFIX}"));
        fs::write(&leftover, b"").unwrap();
        let t = std::time::Instant::now();
        drop(KeyLock::acquire(&key).unwrap());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(!leftover.exists(), "the holder removes the lock file");
    }

    /// Many writers racing for one key: exactly one put-if-absent wins.
    #[test]
    fn racing_writers_get_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::new(dir.path());
        let wins: usize = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let s = &s;
                    sc.spawn(move || {
                        s.put("p/CURRENT", format!("{i}").as_bytes(), Condition::Absent)
                            .is_ok() as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
    }
}
