//! Writing files so that a partial one never appears under its name: the data goes to a
//! temporary file in the destination's folder (`.NAME.part-PID`), which is flushed to disk
//! and renamed over the destination when complete, and removed if anything fails or the job
//! is cancelled first. Used for TIFF images, localization CSVs and model folders.

use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file under a temporary name next to its destination, removed unless persisted.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    pub(crate) fn create(dest: &Path) -> Result<TempFile> {
        let fail = |m: String| Error::file(dest, m);
        let name = dest
            .file_name()
            .ok_or_else(|| fail("not a file name".into()))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(fail(format!(
                "cannot create the file: the folder {} does not exist",
                dir.display()
            )));
        }
        if dest.is_dir() {
            return Err(fail("is a folder; give a file name such as out.tif".into()));
        }
        let path = dir.join(format!(
            ".{}.part-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&path).map_err(|e| fail(format!("cannot create the file: {e}")))?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// Where the data goes until [`TempFile::persist`] (for writers that take a path).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file.
    pub(crate) fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until persisted")
    }

    /// Flushes to disk and renames to `dest`.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        let file = self.file.take().expect("open");
        file.sync_all()
            .map_err(|e| Error::file(dest, format!("cannot write the file: {e}")))?;
        drop(file);
        std::fs::rename(&self.path, dest)
            .map_err(|e| Error::file(dest, format!("cannot replace the file: {e}")))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `dest` atomically: `write` fills the temporary file (errors are reported against
/// `dest` as "cannot write: …").
pub(crate) fn write_atomic(
    dest: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = TempFile::create(dest)?;
    write(tmp.file())
        .and_then(|_| tmp.file().flush())
        .map_err(|e| Error::file(dest, format!("cannot write: {e}")))?;
    tmp.persist(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_file_nor_temporary() {
        let dir = std::env::temp_dir().join(format!("fluorecon-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.csv");
        std::fs::write(&dest, "old").unwrap();
        let e = write_atomic(&dest, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "a temporary file was left"
        );
        write_atomic(&dest, |f| f.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomic(&dir.join("no/such/folder.csv"), |_| Ok(())).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
