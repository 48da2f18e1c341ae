//! The fault-injection seam under every durable write (DESIGN.md
//! "Fail-stop"): the txn log writer, the snapshot writer and the epoch
//! files ask [`check`] before each step that can fail on a real disk
//! (create, write, fsync, rename). In production nothing is installed and
//! the check is one atomic load. Tests install a [`FaultPlan`] for a
//! directory and the real code paths meet the error a full or failing
//! disk would give, so "no ack after a failed write" is tested on the
//! code that acks, not on a model of it.
//!
//! Plans are keyed by directory (a path prefix), so tests running in
//! parallel in one process each fail only their own files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Which durable file a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    TxnLog,
    Snapshot,
    /// `acceptedEpoch` / `currentEpoch`.
    Epoch,
}

/// The step about to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskOp {
    /// Creating (or truncating) a file.
    Create,
    /// Writing bytes (preallocation included).
    Write,
    /// fsync / fdatasync of a file or directory.
    Sync,
    /// Renaming a finished temp file into place.
    Rename,
}

/// One step, as a plan sees it.
#[derive(Debug, Clone, Copy)]
pub struct FaultPoint<'a> {
    pub file: FileKind,
    pub op: DiskOp,
    pub path: &'a Path,
}

/// Decides which steps fail. Implemented by tests.
pub trait FaultPlan: Send + Sync + 'static {
    /// `Some(error)` makes this step fail with it.
    fn check(&self, at: FaultPoint<'_>) -> Option<io::Error>;
}

type Installed = Vec<(u64, PathBuf, Arc<dyn FaultPlan>)>;

/// How many plans are installed: the fast path when there are none.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static PLANS: Mutex<Installed> = Mutex::new(Vec::new());
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn plans() -> MutexGuard<'static, Installed> {
    // A test that panicked while holding the lock leaves valid data.
    PLANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes `plan` decide the steps on files under `dir` until the guard is
/// dropped.
pub fn inject(dir: &Path, plan: Arc<dyn FaultPlan>) -> FaultGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64;
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    plans().push((id, dir, plan));
    ACTIVE.fetch_add(1, Ordering::AcqRel);
    FaultGuard { id }
}

/// Removes its plan when dropped.
#[derive(Debug)]
#[must_use = "the plan is removed when the guard is dropped"]
pub struct FaultGuard {
    id: u64,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        plans().retain(|(id, _, _)| *id != self.id);
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Asks the installed plans about one step; `Ok` when none objects.
pub(crate) fn check(file: FileKind, op: DiskOp, path: &Path) -> io::Result<()> {
    if ACTIVE.load(Ordering::Acquire) == 0 {
        return Ok(());
    }
    let full = absolute(path);
    let matching: Vec<Arc<dyn FaultPlan>> = plans()
        .iter()
        .filter(|(_, dir, _)| full.starts_with(dir))
        .map(|(_, _, plan)| Arc::clone(plan))
        .collect();
    let at = FaultPoint { file, op, path };
    match matching.iter().find_map(|plan| plan.check(at)) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The path with its directory resolved, so it compares with the
/// canonical directories plans are installed for (the file itself may
/// not exist yet).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// The error a full disk gives.
pub fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28) // ENOSPC
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FailSyncs;
    impl FaultPlan for FailSyncs {
        fn check(&self, at: FaultPoint<'_>) -> Option<io::Error> {
            (at.op == DiskOp::Sync).then(|| io::Error::other("injected"))
        }
    }

    #[test]
    fn a_plan_fails_only_its_directory_and_only_while_installed() {
        let mine = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let file = mine.path().join("f");
        {
            let _guard = inject(mine.path(), Arc::new(FailSyncs));
            assert!(check(FileKind::TxnLog, DiskOp::Sync, &file).is_err());
            assert!(check(FileKind::TxnLog, DiskOp::Write, &file).is_ok());
            assert!(check(FileKind::TxnLog, DiskOp::Sync, &other.path().join("f")).is_ok());
        }
        assert!(check(FileKind::TxnLog, DiskOp::Sync, &file).is_ok());
    }
}
