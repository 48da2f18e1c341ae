//! The group-commit writer: one std thread owns the open log file. Appends
//! reach it over a channel; it drains whatever is queued, writes the batch
//! with one positioned write, fsyncs once, and only then announces the
//! highest zxid of the batch as durable (ZAB.md §8, Apache's
//! `SyncRequestProcessor` + `FileTxnLog`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use zk_proto::disk::{encode_log_record, zxid_file_name, FileHeader};
use zk_proto::Jute;

use super::padding::padded_size;
use super::HEADER_LEN;
use crate::storage::faults::{self, DiskOp, FileKind};
use crate::storage::files::{ensure_version_dir, fsync_dir, LOG_PREFIX};

/// Apache's default `preAllocSize`: 64 MiB.
pub const DEFAULT_PREALLOC_SIZE: u64 = 64 * 1024 * 1024;

/// How the log writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Preallocation step in bytes (`zookeeper.preAllocSize`, given in KiB
    /// there); 0 turns preallocation off.
    pub prealloc_size: u64,
    /// fdatasync after each batch (`forceSync=yes`). Off, a batch counts as
    /// durable once written: for tests and throwaway servers only.
    pub force_sync: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            prealloc_size: DEFAULT_PREALLOC_SIZE,
            force_sync: true,
        }
    }
}

/// Counters of the writer thread, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Txns written.
    pub appends: u64,
    /// Batches that wrote at least one txn.
    pub batches: u64,
    /// fdatasync calls made.
    pub fsyncs: u64,
    /// Bytes written (headers and records; not padding).
    pub bytes: u64,
    /// Log files created.
    pub files: u64,
    /// The highest zxid known to be on disk, set before it is announced.
    pub synced_zxid: i64,
}

/// The writer could not persist: the server must stop acknowledging.
#[derive(Debug, Clone, thiserror::Error)]
#[error("txn log {path}: {source}")]
pub struct LogFailure {
    pub path: PathBuf,
    #[source]
    pub source: Arc<io::Error>,
}

#[derive(Debug, Default)]
struct SharedStats {
    appends: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    synced_zxid: AtomicU64,
}

impl SharedStats {
    fn snapshot(&self) -> LogStats {
        LogStats {
            appends: self.appends.load(Ordering::Acquire),
            batches: self.batches.load(Ordering::Acquire),
            fsyncs: self.fsyncs.load(Ordering::Acquire),
            bytes: self.bytes.load(Ordering::Acquire),
            files: self.files.load(Ordering::Acquire),
            synced_zxid: self.synced_zxid.load(Ordering::Acquire) as i64,
        }
    }
}

enum Command {
    Append { zxid: i64, bytes: Bytes },
    Roll,
    Close,
}

/// The txn log writer. Cheap calls from the pipeline; the IO happens on a
/// dedicated thread.
#[derive(Debug)]
pub struct TxnLog {
    commands: mpsc::Sender<Command>,
    durable: watch::Receiver<i64>,
    failure: watch::Receiver<Option<LogFailure>>,
    stats: Arc<SharedStats>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Append { zxid, bytes } => {
                write!(f, "Append({zxid:#x}, {} bytes)", bytes.len())
            }
            Command::Roll => write!(f, "Roll"),
            Command::Close => write!(f, "Close"),
        }
    }
}

impl TxnLog {
    /// Starts the writer for `<log_dir>/version-2` (created if missing).
    /// Nothing is written until the first append, which starts a new file
    /// named after its zxid. The durable zxid starts at 0 (no txn).
    pub fn open(log_dir: &Path, opts: LogOptions) -> io::Result<TxnLog> {
        let dir = ensure_version_dir(log_dir)?;
        let (commands, queue) = mpsc::channel();
        let (durable_tx, durable) = watch::channel(0);
        let (failure_tx, failure) = watch::channel(None);
        let stats = Arc::new(SharedStats::default());
        let writer = LogWriter {
            dir,
            opts,
            current: None,
            retired: Vec::new(),
            pending: BytesMut::new(),
            last_zxid: 0,
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("zk-txnlog".into())
            .spawn(move || run(writer, queue, durable_tx, failure_tx))?;
        Ok(TxnLog {
            commands,
            durable,
            failure,
            stats,
            thread: Some(thread),
        })
    }

    /// Enqueues one txn; `entry_bytes` are the TxnEntry bytes. Never blocks.
    /// After a failure appends are dropped: they will never become durable.
    pub fn append(&self, zxid: i64, entry_bytes: Bytes) {
        // A send error means the thread stopped after a failure, which
        // `failure()` already reports.
        let _ = self.commands.send(Command::Append {
            zxid,
            bytes: entry_bytes,
        });
    }

    /// Highest zxid known durable; changes after each fsync. Closed (its
    /// `changed()` errs) when the writer stopped.
    pub fn durable(&self) -> watch::Receiver<i64> {
        self.durable.clone()
    }

    /// `Some` once the writer failed to write or fsync; it has stopped.
    pub fn failure(&self) -> watch::Receiver<Option<LogFailure>> {
        self.failure.clone()
    }

    /// The next append starts a new `log.<zxid>` file (after a snapshot).
    pub fn roll(&self) {
        let _ = self.commands.send(Command::Roll);
    }

    /// A copy of the writer's counters.
    pub fn stats(&self) -> LogStats {
        self.stats.snapshot()
    }

    /// Writes and fsyncs everything queued, then stops the thread. Reports
    /// the failure if the writer had one.
    pub fn close(mut self) -> io::Result<()> {
        let _ = self.commands.send(Command::Close);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| io::Error::other("txn log writer thread panicked"))?;
        }
        match self.failure.borrow().as_ref() {
            None => Ok(()),
            Some(f) => Err(io::Error::new(f.source.kind(), f.to_string())),
        }
    }
}

impl Drop for TxnLog {
    /// Dropped without `close`: the thread finishes what is queued and
    /// exits on its own; nobody waits for it.
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close);
    }
}

/// The thread: one batch per wake-up, until closed or failed.
fn run(
    mut writer: LogWriter,
    queue: mpsc::Receiver<Command>,
    durable: watch::Sender<i64>,
    failure: watch::Sender<Option<LogFailure>>,
) {
    // `recv` errs when every TxnLog handle is gone.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        let closing = batch.iter().any(|c| matches!(c, Command::Close));
        match writer.process(batch) {
            Ok(Some(zxid)) => {
                durable.send_if_modified(|d| {
                    let advanced = zxid > *d;
                    if advanced {
                        *d = zxid;
                    }
                    advanced
                });
            }
            Ok(None) => {}
            Err(f) => {
                tracing::error!(error = %f, "cannot persist txns; the txn log has stopped");
                failure.send_replace(Some(f));
                return;
            }
        }
        if closing {
            return;
        }
    }
}

/// An open log file and where the next record goes.
struct OpenLog {
    file: File,
    path: PathBuf,
    position: u64,
    /// The file's length including preallocated zeros.
    size: u64,
    /// Written since the last fsync.
    dirty: bool,
}

/// The writer thread's state; synchronous, driven by [`run`].
struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    current: Option<OpenLog>,
    /// Files rolled away from in this batch, still to be fsynced.
    retired: Vec<OpenLog>,
    /// Records for `current` not yet written.
    pending: BytesMut,
    last_zxid: i64,
    stats: Arc<SharedStats>,
}

impl LogWriter {
    /// Writes one batch and makes it durable; returns the highest zxid
    /// written, if any.
    fn process(&mut self, batch: Vec<Command>) -> Result<Option<i64>, LogFailure> {
        let mut highest: Option<i64> = None;
        let mut appends = 0u64;
        for command in batch {
            match command {
                Command::Append { zxid, bytes } => {
                    self.append(zxid, &bytes)?;
                    highest = Some(highest.map_or(zxid, |h| h.max(zxid)));
                    appends += 1;
                }
                Command::Roll | Command::Close => self.roll()?,
            }
        }
        self.flush_pending()?;
        self.sync_all()?;
        if appends > 0 {
            self.stats.appends.fetch_add(appends, Ordering::AcqRel);
            self.stats.batches.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(zxid) = highest {
            self.stats
                .synced_zxid
                .fetch_max(zxid as u64, Ordering::AcqRel);
        }
        Ok(highest)
    }

    fn append(&mut self, zxid: i64, bytes: &[u8]) -> Result<(), LogFailure> {
        if zxid <= self.last_zxid {
            // Apache warns and writes it anyway; so do we.
            tracing::warn!(
                zxid,
                last = self.last_zxid,
                "txn zxid is not above the last one logged"
            );
        }
        self.last_zxid = self.last_zxid.max(zxid);
        if self.current.is_none() {
            self.current = Some(self.create_file(zxid)?);
        }
        encode_log_record(bytes, &mut self.pending);
        Ok(())
    }

    /// Ends the current file: its records are written now and fsynced at
    /// the end of the batch; the next append opens a new file.
    fn roll(&mut self) -> Result<(), LogFailure> {
        self.flush_pending()?;
        if let Some(log) = self.current.take() {
            self.retired.push(log);
        }
        Ok(())
    }

    /// Creates `log.<zxid hex>` with its header, padded to the first
    /// preallocation step (16 + 64 MiB by default, as Apache's).
    fn create_file(&mut self, zxid: i64) -> Result<OpenLog, LogFailure> {
        let path = self.dir.join(zxid_file_name(LOG_PREFIX, zxid));
        let fail = failure(&path);
        // An existing file of that name can only hold txns recovery did not
        // keep (its first zxid is the one we are about to log): replace it.
        faults::check(FileKind::TxnLog, DiskOp::Create, &path).map_err(&fail)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(&fail)?;
        let header = FileHeader::txn_log().to_bytes();
        faults::check(FileKind::TxnLog, DiskOp::Write, &path).map_err(&fail)?;
        file.write_all_at(&header, 0).map_err(&fail)?;
        if self.opts.force_sync {
            faults::check(FileKind::TxnLog, DiskOp::Sync, &path).map_err(&fail)?;
            fsync_dir(&self.dir).map_err(failure(&self.dir))?;
        }
        self.stats.files.fetch_add(1, Ordering::AcqRel);
        self.stats.bytes.fetch_add(HEADER_LEN, Ordering::AcqRel);
        tracing::debug!(path = %path.display(), "started a new txn log");
        Ok(OpenLog {
            file,
            path: path.clone(),
            position: HEADER_LEN,
            size: HEADER_LEN,
            dirty: true,
        })
    }

    /// Writes the pending records to the current file in one call, growing
    /// the file first when the write position nears its end.
    fn flush_pending(&mut self) -> Result<(), LogFailure> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(log) = self.current.as_mut() else {
            // Records are only queued once a file is open.
            self.pending.clear();
            return Ok(());
        };
        let fail = failure(&log.path);
        faults::check(FileKind::TxnLog, DiskOp::Write, &log.path).map_err(&fail)?;
        let new_size = padded_size(log.position, log.size, self.opts.prealloc_size);
        if new_size > log.size {
            // One zero byte at the new end makes a sparse file of that size.
            log.file.write_all_at(&[0], new_size - 1).map_err(&fail)?;
            log.size = new_size;
        }
        log.file
            .write_all_at(&self.pending, log.position)
            .map_err(&fail)?;
        let written = self.pending.len() as u64;
        log.position += written;
        log.size = log.size.max(log.position);
        log.dirty = true;
        self.stats.bytes.fetch_add(written, Ordering::AcqRel);
        self.pending.clear();
        Ok(())
    }

    /// fdatasyncs every file written in this batch (one, unless it rolled).
    fn sync_all(&mut self) -> Result<(), LogFailure> {
        let force = self.opts.force_sync;
        let stats = &self.stats;
        let sync = |log: &mut OpenLog| -> Result<(), LogFailure> {
            if log.dirty {
                // The sync point, even without forceSync: a failure
                // injected here stands for a failed fdatasync.
                faults::check(FileKind::TxnLog, DiskOp::Sync, &log.path)
                    .map_err(failure(&log.path))?;
            }
            if log.dirty && force {
                log.file.sync_data().map_err(failure(&log.path))?;
                stats.fsyncs.fetch_add(1, Ordering::AcqRel);
            }
            log.dirty = false;
            Ok(())
        };
        for log in &mut self.retired {
            sync(log)?;
        }
        self.retired.clear();
        if let Some(log) = self.current.as_mut() {
            sync(log)?;
        }
        Ok(())
    }
}

fn failure(path: &Path) -> impl Fn(io::Error) -> LogFailure + '_ {
    move |e| LogFailure {
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}
