//! The `acceptedEpoch` and `currentEpoch` files (ZAB.md §9): one decimal
//! number each, in `<dataDir>/version-2`. They are written to a temp name,
//! fsynced and renamed, so a crash leaves either the old or the new value.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::quorum::{Epoch, EpochKind};
use crate::storage::faults::{self, DiskOp, FileKind};

const ACCEPTED: &str = "acceptedEpoch";
const CURRENT: &str = "currentEpoch";

fn file_name(kind: EpochKind) -> &'static str {
    match kind {
        EpochKind::Accepted => ACCEPTED,
        EpochKind::Current => CURRENT,
    }
}

impl EpochFiles {
    /// The file an epoch kind is kept in (for messages).
    pub fn file_name(kind: EpochKind) -> &'static str {
        file_name(kind)
    }
}

/// The epoch files of one data dir.
#[derive(Debug, Clone)]
pub struct EpochFiles {
    dir: PathBuf,
}

impl EpochFiles {
    /// Files under `<data_dir>/version-2` (created on first write).
    pub fn new(data_dir: &Path) -> Self {
        EpochFiles {
            dir: crate::storage::version_dir(data_dir),
        }
    }

    /// The stored epoch, or `None` when the file does not exist.
    pub fn read(&self, kind: EpochKind) -> io::Result<Option<Epoch>> {
        let path = self.dir.join(file_name(kind));
        match fs::read_to_string(&path) {
            Ok(text) => parse_epoch(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not an epoch: {text:?}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes durably: temp file, fsync, rename, fsync the directory.
    pub fn write(&self, kind: EpochKind, epoch: Epoch) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let name = file_name(kind);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let target = self.dir.join(name);
        {
            faults::check(FileKind::Epoch, DiskOp::Create, &target)?;
            let mut f = fs::File::create(&tmp)?;
            faults::check(FileKind::Epoch, DiskOp::Write, &target)?;
            writeln!(f, "{epoch}")?;
            faults::check(FileKind::Epoch, DiskOp::Sync, &target)?;
            f.sync_all()?;
        }
        faults::check(FileKind::Epoch, DiskOp::Rename, &target)?;
        fs::rename(&tmp, target)?;
        fs::File::open(&self.dir)?.sync_all()
    }
}

/// Apache writes the number followed by a newline; accept any whitespace.
fn parse_epoch(text: &str) -> Option<Epoch> {
    let n: i64 = text.trim().parse().ok()?;
    Epoch::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_epoch_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let files = EpochFiles::new(dir.path());
        assert_eq!(files.read(EpochKind::Accepted).unwrap(), None);
    }

    #[test]
    fn written_epochs_read_back_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let files = EpochFiles::new(dir.path());
        files.write(EpochKind::Accepted, 7).unwrap();
        files.write(EpochKind::Current, 6).unwrap();
        files.write(EpochKind::Accepted, 8).unwrap();
        assert_eq!(files.read(EpochKind::Accepted).unwrap(), Some(8));
        assert_eq!(files.read(EpochKind::Current).unwrap(), Some(6));
        let text = fs::read_to_string(dir.path().join("version-2/acceptedEpoch")).unwrap();
        assert_eq!(text, "8\n");
    }

    #[test]
    fn garbage_in_an_epoch_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        fs::create_dir_all(&v2).unwrap();
        fs::write(v2.join("currentEpoch"), "x1").unwrap();
        let files = EpochFiles::new(dir.path());
        assert!(files.read(EpochKind::Current).is_err());
    }
}
