//! Writes a file the way the kubelet updates Secret volumes (`AtomicWriter`): the content goes
//! into a fresh `..<timestamp>` directory, then the `..data` symlink is swapped to it with one
//! `rename(2)`. The visible `<file>` is a symlink through `..data`, so an app that re-opens it
//! sees the old or the new content, never a torn or empty one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

pub struct AtomicWriter {
    dir: PathBuf,
    file_name: String,
    file_mode: u32,
}

impl AtomicWriter {
    /// `file_name` must be a plain name; `file_mode` is applied exactly (umask aside).
    pub fn new(dir: impl Into<PathBuf>, file_name: &str, file_mode: u32) -> io::Result<Self> {
        if file_name.is_empty() || file_name.starts_with("..") || file_name.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file_name:?} is not a plain file name"),
            ));
        }
        Ok(AtomicWriter {
            dir: dir.into(),
            file_name: file_name.to_owned(),
            file_mode,
        })
    }

    /// The path apps read.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file_name)
    }

    pub fn write(&self, contents: &[u8]) -> io::Result<()> {
        let previous = fs::read_link(self.dir.join(DATA)).ok();
        let version = self.new_version_name();
        let version_dir = self.dir.join(&version);
        // Owner rwx; group and others may list it exactly when they may read the file.
        let readable = (self.file_mode & 0o044) | ((self.file_mode & 0o044) >> 2);
        DirBuilder::new()
            .mode(0o700 | readable)
            .create(&version_dir)?;
        fs::set_permissions(&version_dir, fs::Permissions::from_mode(0o700 | readable))?;
        let file_path = version_dir.join(&self.file_name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.file_mode)
            .open(&file_path)?;
        file.write_all(contents)?;
        file.set_permissions(fs::Permissions::from_mode(self.file_mode))?;
        file.sync_all()?;
        sync_dir(&version_dir)?;

        // The swap: a new symlink renamed over `..data` replaces it atomically.
        replace_symlink(&self.dir, Path::new(&version), DATA)?;
        let visible = self.path();
        if fs::read_link(&visible).ok().as_deref() != Some(&Path::new(DATA).join(&self.file_name)) {
            replace_symlink(
                &self.dir,
                &Path::new(DATA).join(&self.file_name),
                &self.file_name,
            )?;
        }
        sync_dir(&self.dir)?;
        self.remove_old_versions(Path::new(&version), previous.as_deref())
    }

    fn new_version_name(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = jiff::Timestamp::now();
        format!(
            "..{}_{}",
            now.strftime("%Y_%m_%d_%H_%M_%S.%f"),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Keeps the current and the previous version: a reader that resolved `..data` just
    /// before the swap can still open its file.
    fn remove_old_versions(&self, current: &Path, previous: Option<&Path>) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let name = PathBuf::from(entry?.file_name());
            let is_version = name
                .to_str()
                .is_some_and(|n| n.starts_with("..") && n != DATA && n != DATA_TMP);
            if is_version && name != current && Some(name.as_path()) != previous {
                fs::remove_dir_all(self.dir.join(&name))?;
            }
        }
        Ok(())
    }
}

fn replace_symlink(dir: &Path, target: &Path, name: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp)?;
    fs::rename(&tmp, dir.join(name))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("tooken-sidecar-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn versions(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_str().unwrap();
                name.starts_with("..") && name != DATA
            })
            .count()
    }

    #[test]
    fn writes_the_kubelet_layout_with_tight_modes() {
        let tmp = TempDir::new("layout");
        let writer = AtomicWriter::new(&tmp.0, "token", 0o440).unwrap();
        for value in ["one", "two", "three"] {
            writer.write(value.as_bytes()).unwrap();
            assert_eq!(fs::read_to_string(writer.path()).unwrap(), value);
        }
        assert_eq!(
            fs::read_link(writer.path()).unwrap(),
            Path::new("..data/token")
        );
        let version = fs::read_link(tmp.0.join(DATA)).unwrap();
        assert!(version.to_str().unwrap().starts_with("..20"), "{version:?}");
        let file_mode = fs::metadata(tmp.0.join(&version).join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(file_mode & 0o777, 0o440);
        let dir_mode = fs::metadata(tmp.0.join(&version))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o750);
        assert_eq!(
            versions(&tmp.0),
            2,
            "the current and the previous version are kept"
        );
        assert!(!tmp.0.join("token.tmp").exists() && !tmp.0.join("..data.tmp").exists());
    }

    #[test]
    fn file_names_that_would_escape_the_directory_are_refused() {
        for name in ["", "../x", "a/b", "..data"] {
            assert!(AtomicWriter::new("/tmp", name, 0o400).is_err(), "{name}");
        }
    }

    #[test]
    fn a_reader_in_a_loop_never_sees_a_torn_or_empty_value() {
        let tmp = TempDir::new("torn");
        let writer = AtomicWriter::new(&tmp.0, "token", 0o600).unwrap();
        // Large values, so a non-atomic write would be observed half done.
        let values: Vec<Vec<u8>> = (b'a'..=b'd').map(|c| vec![c; 256 * 1024]).collect();
        writer.write(&values[0]).unwrap();
        let writing = Arc::new(AtomicBool::new(true));
        let reader = {
            let (path, writing, values) = (writer.path(), writing.clone(), values.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while writing.load(Ordering::Relaxed) {
                    let seen = fs::read(&path).expect("the file is always there");
                    assert!(values.contains(&seen), "torn read of {} bytes", seen.len());
                    reads += 1;
                }
                reads
            })
        };
        for round in 0..200 {
            writer.write(&values[round % values.len()]).unwrap();
        }
        writing.store(false, Ordering::Relaxed);
        let reads = reader.join().expect("the reader saw only whole values");
        assert!(reads > 0);
    }
}
