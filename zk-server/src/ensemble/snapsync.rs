//! SNAP as a stream (ZAB.md §5.3; docs in DESIGN.md, "Large-state sync").
//!
//! Leader: [`OutgoingSnap`] walks the tree in slices on the writer task
//! ([`SnapshotStream`], a fuzzy snapshot replayed from its start zxid), a
//! few pieces each time the link to the learner has room, so clients keep
//! being served while it runs and the link never holds more than
//! [`LINK_BUDGET`] bytes of it. Whatever the core sends that learner
//! meanwhile waits in the stream's backlog and follows the body.
//!
//! Learner: the link's reader hands each piece to [`receive`] on a blocking
//! thread, which writes a snapshot file under a temporary name (header,
//! body, Adler-32 seal, fsync) and loads the tree from the same pieces as
//! they come ([`SnapshotLoader`]), so neither side ever holds the
//! serialized tree. The core gets the SNAP marker only once the staged
//! snapshot is complete; at NEWLEADER, [`crate::ensemble::disk::install`]
//! renames the file into place and replaces the logs, and the loaded
//! database replaces the old one.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Notify};
use zk_proto::disk::{encode_seal, zxid_file_name, Adler32, FileHeader};
use zk_proto::Jute;

use super::codec::PeerMsg;
use crate::db::{Database, DbConfig};
use crate::db::{SnapshotLoader, SnapshotStream};
use crate::quorum::sync::follows;
use crate::quorum::{LogEntry, ServerId, Zxid};
use crate::storage::{self, TxnLogReader};

/// Size of one piece of a streamed body.
pub const CHUNK: usize = 128 * 1024;
/// Most bytes of a stream queued on a link at once: the producer waits
/// for the link to drain below it (flow control).
pub const LINK_BUDGET: usize = 4 * 1024 * 1024;
/// Most bytes one producer turn writes before the writer task moves on to
/// other work (one slice of the walk).
pub const SLICE: usize = 1024 * 1024;
/// Pieces in flight between a learner's link reader and its staging
/// thread.
pub const STAGE_QUEUE: usize = 16;

/// Leader: history being streamed to one learner, a SNAP's tree or a
/// DIFF's txns read from the log files.
#[derive(Debug)]
pub struct OutgoingSnap {
    pub to: ServerId,
    pub session: u64,
    source: Source,
    /// The last piece went out; what remains is the closing message.
    finished: bool,
    /// What the core sent this learner since the header; it goes out
    /// after the stream, in order.
    backlog: VecDeque<PeerMsg>,
}

#[derive(Debug)]
enum Source {
    Tree(SnapshotStream),
    Logged(LoggedTxns),
}

/// What a stream has to send next.
#[derive(Debug)]
pub enum Step {
    Send(PeerMsg),
    /// Complete: send the closing message if any, then the backlog.
    Finished(Option<PeerMsg>),
    /// Nothing ready yet (the log reader is behind).
    Wait,
    /// The stream cannot be completed; the learner must sync again.
    Failed(String),
}

impl OutgoingSnap {
    /// The tree of `db` as of now (a SNAP, the packet already sent).
    pub fn tree(to: ServerId, session: u64, db: &Database) -> Self {
        Self::with_source(to, session, Source::Tree(SnapshotStream::new(db)))
    }

    /// Logged txns in `(from, upto]`, read from the files of `log_dir` on
    /// a blocking thread (a DIFF, the header already sent).
    pub fn logged(to: ServerId, session: u64, log_dir: PathBuf, from: Zxid, upto: Zxid) -> Self {
        let txns = LoggedTxns::start(log_dir, session, from, upto);
        Self::with_source(to, session, Source::Logged(txns))
    }

    fn with_source(to: ServerId, session: u64, source: Source) -> Self {
        OutgoingSnap {
            to,
            session,
            source,
            finished: false,
            backlog: VecDeque::new(),
        }
    }

    /// Holds a message until the stream is out.
    pub fn defer(&mut self, msg: PeerMsg) {
        self.backlog.push_back(msg);
    }

    /// The next thing to send.
    pub fn step(&mut self, db: &Database) -> Step {
        match &mut self.source {
            Source::Tree(_) if self.finished => {
                Step::Finished(Some(PeerMsg::SnapEnd { complete: true }))
            }
            Source::Tree(stream) => {
                let mut buf = BytesMut::with_capacity(CHUNK + 4096);
                self.finished = stream.fill(db, &mut buf, CHUNK);
                Step::Send(PeerMsg::SnapChunk(buf.freeze()))
            }
            Source::Logged(txns) => txns.step(),
        }
    }

    /// False when the stream waits for its log reader and has nothing
    /// buffered (see [`OutgoingSnap::reader_ready`]).
    pub fn has_work(&mut self) -> bool {
        match &mut self.source {
            Source::Tree(_) => true,
            Source::Logged(txns) => txns.fill(),
        }
    }

    /// A wake-up for when the log reader has more (a tree stream is
    /// always ready).
    pub fn reader_ready(&self) -> Option<Arc<Notify>> {
        match &self.source {
            Source::Tree(_) => None,
            Source::Logged(txns) => Some(Arc::clone(&txns.ready)),
        }
    }

    /// The messages held back, once the stream is complete.
    pub fn into_backlog(self) -> VecDeque<PeerMsg> {
        self.backlog
    }
}

/// Txns read from the log files by a blocking thread, a bounded queue
/// ahead of the link.
#[derive(Debug)]
struct LoggedTxns {
    rx: std_mpsc::Receiver<Result<LogEntry, String>>,
    ready: Arc<Notify>,
    /// Read but not sent yet.
    next: Option<Result<LogEntry, String>>,
    session: u64,
    prev: Zxid,
    upto: Zxid,
}

impl LoggedTxns {
    fn start(log_dir: PathBuf, session: u64, from: Zxid, upto: Zxid) -> Self {
        let (tx, rx) = std_mpsc::sync_channel(LOGGED_QUEUE);
        let ready = Arc::new(Notify::new());
        let wake = Arc::clone(&ready);
        std::thread::spawn(move || read_logged(&log_dir, from, upto, &tx, &wake));
        LoggedTxns {
            rx,
            ready,
            next: None,
            session,
            prev: from,
            upto,
        }
    }

    /// True when something is ready to send (or to report).
    fn fill(&mut self) -> bool {
        if self.next.is_none() {
            self.next = match self.rx.try_recv() {
                Ok(item) => Some(item),
                Err(std_mpsc::TryRecvError::Empty) => None,
                Err(std_mpsc::TryRecvError::Disconnected) if self.prev == self.upto => None,
                Err(std_mpsc::TryRecvError::Disconnected) => {
                    Some(Err("the log reader stopped early".to_string()))
                }
            };
        }
        self.next.is_some() || self.prev == self.upto
    }

    fn step(&mut self) -> Step {
        if self.prev == self.upto {
            return Step::Finished(None);
        }
        if !self.fill() {
            return Step::Wait;
        }
        match self.next.take() {
            Some(Ok(entry)) => {
                let prev = std::mem::replace(&mut self.prev, entry.zxid);
                Step::Send(PeerMsg::Core(crate::quorum::Message::ToLearner {
                    session: self.session,
                    msg: crate::quorum::LeaderMsg::Proposal {
                        entry,
                        prev: Some(prev),
                    },
                }))
            }
            Some(Err(e)) => Step::Failed(e),
            None => Step::Wait,
        }
    }
}

/// Txns queued between a log reader and the writer task.
const LOGGED_QUEUE: usize = 256;

/// Blocking: sends the logged txns in `(from, upto]` in order, then
/// stops; an error (the files do not hold them all) ends the queue.
fn read_logged(
    log_dir: &Path,
    from: Zxid,
    upto: Zxid,
    tx: &std_mpsc::SyncSender<Result<LogEntry, String>>,
    ready: &Notify,
) {
    let send = |item| {
        let sent = tx.send(item).is_ok();
        ready.notify_one();
        sent
    };
    let reader = match TxnLogReader::open(log_dir, from) {
        Ok(reader) => reader,
        Err(e) => {
            send(Err(e.to_string()));
            return;
        }
    };
    let mut prev = from;
    for entry in reader {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                send(Err(e.to_string()));
                return;
            }
        };
        let zxid = entry.header.zxid;
        if zxid == from {
            continue;
        }
        if zxid > upto {
            break;
        }
        if prev == from && !follows(from, zxid) {
            send(Err(format!(
                "the logs do not hold the txn after 0x{from:x} (they go on at 0x{zxid:x})"
            )));
            return;
        }
        if !send(Ok(LogEntry {
            zxid,
            payload: entry.to_bytes(),
        })) {
            return; // the stream was abandoned
        }
        prev = zxid;
        if zxid == upto {
            return;
        }
    }
    send(Err(format!(
        "the logs end at 0x{prev:x}, before 0x{upto:x}"
    )));
}

/// Why a streamed snapshot could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("writing the staged snapshot {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the leader's snapshot does not decode: {0}")]
    Decode(#[from] zk_proto::DecodeError),
    #[error("the snapshot stream ended before its signature")]
    Incomplete,
}

/// Where and how a learner stages the snapshots it receives.
#[derive(Debug, Clone)]
pub struct Staging {
    pub snap_dir: PathBuf,
    pub db_config: DbConfig,
}

/// One piece of a stream for the staging thread, or its end.
#[derive(Debug)]
pub enum Piece {
    Chunk(Bytes),
    End,
}

/// A received snapshot: its file under a temporary name in the snapshot
/// directory and the database loaded from it. The file is removed if
/// this is dropped without being installed.
pub struct StagedSnapshot {
    pub zxid: Zxid,
    /// The learner connection attempt it came in.
    pub session: u64,
    path: Option<PathBuf>,
    pub db: Database,
}

impl std::fmt::Debug for StagedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedSnapshot")
            .field("zxid", &self.zxid)
            .field("session", &self.session)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StagedSnapshot {
    /// The staged file; the caller renames it into place.
    pub fn take_path(&mut self) -> Option<PathBuf> {
        self.path.take()
    }
}

impl Drop for StagedSnapshot {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// The temporary name of a snapshot being received: not `snapshot.*`, so
/// neither recovery nor purge mistakes it for one.
fn staging_path(dir: &Path, zxid: Zxid, session: u64) -> PathBuf {
    let name = zxid_file_name("snapshot", zxid);
    dir.join(format!(".{name}.{session:016x}.recv"))
}

/// Removes what an interrupted receive left behind (at start).
pub fn remove_stale_staging(snap_dir: &Path) {
    let dir = storage::version_dir(snap_dir);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".snapshot.") && name.ends_with(".recv") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Blocking: receives the body of a SNAP at `zxid` piece by piece until
/// [`Piece::End`], writing the staged file and loading the tree as it
/// goes. A channel that closes before `End` (the link broke) is an error,
/// and nothing is left on disk.
pub fn receive(
    staging: &Staging,
    zxid: Zxid,
    session: u64,
    mut pieces: mpsc::Receiver<Piece>,
) -> Result<StagedSnapshot, StageError> {
    let dir = storage::version_dir(&staging.snap_dir);
    let path = staging_path(&dir, zxid, session);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StageError::Io { path, source }
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    // Removes the file on every early return.
    let mut guard = StagedSnapshot {
        zxid,
        session,
        path: Some(path.clone()),
        db: Database::new(staging.db_config.clone()),
    };
    let mut file =
        BufWriter::with_capacity(256 * 1024, File::create(&path).map_err(io_err(&path))?);
    let header = FileHeader::snapshot().to_bytes();
    let mut checksum = Adler32::new();
    checksum.update(&header);
    file.write_all(&header).map_err(io_err(&path))?;
    let mut loader = SnapshotLoader::new(staging.db_config.extended_types_enabled);
    loop {
        match pieces.blocking_recv() {
            Some(Piece::Chunk(bytes)) => {
                checksum.update(&bytes);
                file.write_all(&bytes).map_err(io_err(&path))?;
                loader.feed(&bytes)?;
            }
            Some(Piece::End) => break,
            None => return Err(StageError::Incomplete),
        }
    }
    if !loader.is_complete() {
        return Err(StageError::Incomplete);
    }
    let mut seal = BytesMut::new();
    encode_seal(checksum.value(), &mut seal);
    file.write_all(&seal).map_err(io_err(&path))?;
    let file = file.into_inner().map_err(|e| StageError::Io {
        path: path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(&path))?;
    guard.db = Database::from_loader(staging.db_config.clone(), loader, zxid)?;
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::read_newest_snapshot;
    use zk_proto::Reader;

    fn staging(dir: &Path) -> Staging {
        Staging {
            snap_dir: dir.to_path_buf(),
            db_config: DbConfig::default(),
        }
    }

    /// Streams `db` through an [`OutgoingSnap`] into [`receive`].
    fn stream_into(db: &Database, dir: &Path, end: bool) -> Result<StagedSnapshot, StageError> {
        let (tx, rx) = mpsc::channel(1024);
        let mut out = OutgoingSnap::tree(2, 9, db);
        loop {
            match out.step(db) {
                Step::Send(PeerMsg::SnapChunk(chunk)) => tx.try_send(Piece::Chunk(chunk)).unwrap(),
                Step::Finished(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        if end {
            tx.try_send(Piece::End).unwrap();
        }
        drop(tx);
        receive(&staging(dir), db.last_processed_zxid(), 9, rx)
    }

    #[test]
    fn a_received_snapshot_is_a_valid_snapshot_file_and_a_loaded_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::new(DbConfig::default());
        let mut staged = stream_into(&db, dir.path(), true).unwrap();
        assert_eq!(staged.db.tree().len(), db.tree().len());
        let path = staged.take_path().unwrap();
        let target = storage::version_dir(dir.path()).join("snapshot.0");
        fs::rename(&path, &target).unwrap();
        let loaded = read_newest_snapshot(dir.path(), |r: &mut Reader, zxid| {
            Database::deserialize_snapshot(DbConfig::default(), r, zxid)
        })
        .unwrap()
        .expect("the seal matches");
        assert_eq!(loaded.value.tree().len(), db.tree().len());
    }

    #[test]
    fn a_stream_cut_off_before_its_end_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::new(DbConfig::default());
        let err = stream_into(&db, dir.path(), false).unwrap_err();
        assert!(matches!(err, StageError::Incomplete));
        let left = fs::read_dir(storage::version_dir(dir.path()))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }
}
