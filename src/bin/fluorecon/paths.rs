//! Output paths, checked before any work so that nothing is lost: an output that is one of
//! the command's inputs (the same file under any name: a relative path, a symbolic or hard
//! link) or another of its outputs is refused, and so is an existing output that is
//! read-only or a folder. The CLI runs as whoever starts it, root included, so the
//! permission bits are checked here rather than left to the file system.

use fluorecon::{Error, Result};
use std::path::{Path, PathBuf};

/// What makes two paths the same file: (device, inode) when it exists, else the canonical
/// folder joined with the name.
#[derive(PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn identity(p: &Path) -> Option<Identity> {
    if let Ok(m) = std::fs::metadata(p) {
        use std::os::unix::fs::MetadataExt;
        return Some(Identity::Inode(m.dev(), m.ino()));
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(Identity::Path(
        std::fs::canonicalize(parent).ok()?.join(p.file_name()?),
    ))
}

/// Refuses `outputs` that name one of `inputs` or each other, or an existing read-only file
/// or folder. Inputs that do not exist are left to the readers' own messages.
pub fn check_outputs(inputs: &[&Path], outputs: &[&Path]) -> Result<()> {
    let ids: Vec<(&Path, Identity)> = inputs
        .iter()
        .filter_map(|&p| Some((p, identity(p)?)))
        .collect();
    for (k, &out) in outputs.iter().enumerate() {
        let Some(id) = identity(out) else { continue };
        if let Some((input, _)) = ids.iter().find(|(_, i)| *i == id) {
            return Err(Error::file(
                out,
                format!(
                    "this output is the input {}: choose another file name (Fluorecon never \
                     overwrites its input)",
                    input.display()
                ),
            ));
        }
        if let Some(other) = outputs[..k]
            .iter()
            .find(|&&o| identity(o).is_some_and(|i| i == id))
        {
            return Err(Error::file(
                out,
                format!(
                    "two outputs are the same file ({}): give each its own name",
                    other.display()
                ),
            ));
        }
        if let Ok(m) = std::fs::metadata(out) {
            if m.is_dir() {
                return Err(Error::file(
                    out,
                    "is a folder: give a file name for the output",
                ));
            }
            if m.permissions().readonly() {
                return Err(Error::file(
                    out,
                    "the file exists and is read-only: Fluorecon does not replace a \
                     write-protected file; choose another name or make it writable",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_links_and_read_only_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("fluorecon-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let input = dir.join("in.tif");
        std::fs::write(&input, b"data").unwrap();
        let fresh = dir.join("out.tif");
        assert!(check_outputs(&[&input], &[&fresh]).is_ok());
        // The same file by another name: ../, a symbolic link, a hard link.
        let dotted = dir.join("sub/../in.tif");
        let e = check_outputs(&[&input], &[&dotted])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is the input"), "{e}");
        std::os::unix::fs::symlink(&input, dir.join("link.tif")).unwrap();
        assert!(check_outputs(&[&input], &[&dir.join("link.tif")]).is_err());
        std::fs::hard_link(&input, dir.join("hard.tif")).unwrap();
        assert!(check_outputs(&[&dir.join("hard.tif")], &[&input]).is_err());
        // A new output named twice, through different paths.
        let twice = dir.join("sub/../out.tif");
        let e = check_outputs(&[&input], &[&fresh, &twice])
            .unwrap_err()
            .to_string();
        assert!(e.contains("same file"), "{e}");
        // Read-only and folder outputs.
        let ro = dir.join("ro.tif");
        std::fs::write(&ro, b"keep").unwrap();
        let mut perm = std::fs::metadata(&ro).unwrap().permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(&ro, perm).unwrap();
        let e = check_outputs(&[&input], &[&ro]).unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
        assert!(check_outputs(&[], &[&dir.join("sub")]).is_err());
        assert_eq!(std::fs::read(&ro).unwrap(), b"keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
