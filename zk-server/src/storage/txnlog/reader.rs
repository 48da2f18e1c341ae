//! Reading txn logs: one file record by record ([`LogFile`]), and every
//! file of a directory in zxid order ([`TxnLogReader`]).
//!
//! Where a file's data ends matters for recovery, so each file read says
//! how it ended: cleanly (zero padding or end of file), or torn (a crash
//! cut a record short: its length runs past the data, or its `'B'` end
//! marker is missing). A whole record whose checksum fails is damage, not
//! a torn write, even when it is the last one: it is reported as an error
//! naming the file and offset (Apache: "CRC check failed"), unless the
//! operator asked to cut the log there ([`OnCorrupt::Truncate`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use zk_proto::disk::{decode_log_record, FileHeader, LogRecord, TXN_LOG_MAGIC};
use zk_proto::{Jute, TxnEntry};

use super::HEADER_LEN;
use crate::storage::files::{first_file_holding, list, version_dir, LOG_PREFIX};
use crate::storage::StorageError;

/// Checksum (8) + length (4).
const RECORD_HEAD_LEN: u64 = 12;

/// What the next bytes of a log file hold, before the tail policy.
#[derive(Debug)]
enum Step {
    Record { end: u64, txn_bytes: Bytes },
    End,
    Torn,
    Corrupt { stored: i64, computed: u32 },
}

/// What a log file holds next, after the tail policy.
#[derive(Debug, Clone)]
pub(crate) enum Next {
    /// A whole record at `offset`, ending (after its `'B'`) at `end`.
    Txn {
        offset: u64,
        end: u64,
        txn_bytes: Bytes,
    },
    /// The data ended cleanly (zero padding or the end of the file).
    End,
    /// The data ended in a torn record starting at `offset`.
    Torn { offset: u64 },
}

/// A torn tail found while reading: where the last whole record ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Offset of the first byte that is not part of a whole record.
    pub offset: u64,
    /// The file's length when it was read (padding included).
    pub file_len: u64,
    /// Why the data ends here.
    pub cause: TailCause,
}

/// Why a log file's data is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailCause {
    /// A record cut short by a crash: safe to drop, it was never acked.
    Torn,
    /// A whole record whose checksum failed, cut because the operator
    /// asked for it ([`OnCorrupt::Truncate`]).
    Corrupt,
    /// A whole file after a corrupt record, dropped with it (`offset` 0):
    /// keeping it would leave a hole in the history.
    AfterCorrupt,
}

/// What reading does with a whole record whose checksum fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Stop with [`StorageError::Corrupt`] naming the file and offset;
    /// the server refuses to start (Apache: "CRC check failed").
    #[default]
    Refuse,
    /// End the history just before it: the record, the rest of its file
    /// and every later log file are cut (zoo.cfg `truncateCorruptTxnLog`,
    /// `zk-server --truncate-corrupt-txnlog`). What they held is lost
    /// on this server; an ensemble member gets it back from the leader.
    Truncate,
}

/// One log file, read front to back.
pub(crate) struct LogFile {
    path: PathBuf,
    input: BufReader<File>,
    /// Offset of the next unread byte.
    offset: u64,
    len: u64,
    /// Set once the data ended; later calls repeat it.
    finished: Option<Next>,
}

impl LogFile {
    /// Opens `path` and checks its header. A file too short for a header,
    /// or whose header is all zeros, is a log torn before its first record.
    pub(crate) fn open(path: &Path) -> Result<LogFile, StorageError> {
        let file = File::open(path).map_err(StorageError::io(path))?;
        let len = file.metadata().map_err(StorageError::io(path))?.len();
        let mut log = LogFile {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(64 * 1024, file),
            offset: 0,
            len,
            finished: None,
        };
        let header = log.read_up_to(HEADER_LEN).map_err(StorageError::io(path))?;
        if header.len() < HEADER_LEN as usize || header.iter().all(|&b| b == 0) {
            log.finished = Some(Next::Torn { offset: 0 });
            return Ok(log);
        }
        match FileHeader::from_bytes(header) {
            Ok(h) if h.magic == TXN_LOG_MAGIC => Ok(log),
            _ => Err(StorageError::BadLogHeader {
                path: path.to_path_buf(),
            }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The next record, or how the data ended.
    pub(crate) fn next(&mut self) -> Result<Next, StorageError> {
        if let Some(done) = &self.finished {
            return Ok(done.clone());
        }
        let offset = self.offset;
        let next = match self.step()? {
            Step::Record { end, txn_bytes } => {
                return Ok(Next::Txn {
                    offset,
                    end,
                    txn_bytes,
                })
            }
            Step::End => Next::End,
            Step::Torn => Next::Torn { offset },
            // A whole record (its end marker is there) whose checksum
            // fails is damage, wherever it is, as Apache's "CRC check
            // failed": the caller decides (refuse, or cut on purpose).
            Step::Corrupt { stored, computed } => {
                return Err(StorageError::Corrupt {
                    path: self.path.clone(),
                    offset,
                    stored,
                    computed,
                })
            }
        };
        self.finished = Some(next.clone());
        Ok(next)
    }

    /// Reads and classifies the record at the current offset; advances
    /// past it when it is whole.
    fn step(&mut self) -> Result<Step, StorageError> {
        let io_err = StorageError::io(&self.path);
        let head = self.read_up_to(RECORD_HEAD_LEN).map_err(io_err)?;
        let mut record = head.to_vec();
        if head.len() as u64 == RECORD_HEAD_LEN {
            let len = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
            // Only a positive length has a body; never read past the file.
            if let Ok(len) = u64::try_from(len) {
                if len > 0 {
                    let body = self
                        .read_up_to(len + 1)
                        .map_err(StorageError::io(&self.path))?;
                    record.extend_from_slice(&body);
                }
            }
        }
        Ok(match decode_log_record(&Bytes::from(record)) {
            LogRecord::Txn { txn_bytes, .. } => Step::Record {
                end: self.offset,
                txn_bytes,
            },
            LogRecord::End => Step::End,
            LogRecord::Torn => Step::Torn,
            LogRecord::Corrupt { stored, computed } => Step::Corrupt { stored, computed },
        })
    }

    /// Reads up to `want` bytes, fewer only at the end of the file.
    fn read_up_to(&mut self, want: u64) -> io::Result<Bytes> {
        let available = self.len.saturating_sub(self.offset).min(want);
        let mut buf = Vec::with_capacity(available as usize);
        (&mut self.input).take(available).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        Ok(Bytes::from(buf))
    }
}

/// Every txn with zxid ≥ `from_zxid` in the logs of a directory, in zxid
/// order, read from the newest file starting at or before `from_zxid` on
/// (ZAB.md §9.6). Torn tails end their file's data and are remembered
/// ([`TxnLogReader::torn_tails`]); corruption or an undecodable record ends
/// the iteration with an error.
pub struct TxnLogReader {
    files: VecDeque<PathBuf>,
    current: Option<LogFile>,
    from_zxid: i64,
    on_corrupt: OnCorrupt,
    torn: Vec<TornTail>,
    last_zxid: Option<i64>,
    failed: bool,
}

impl TxnLogReader {
    /// Reads `<log_dir>/version-2/log.*`; a corrupt record is an error.
    pub fn open(log_dir: &Path, from_zxid: i64) -> Result<TxnLogReader, StorageError> {
        Self::open_with(log_dir, from_zxid, OnCorrupt::Refuse)
    }

    /// As [`TxnLogReader::open`], with a choice for corrupt records.
    pub fn open_with(
        log_dir: &Path,
        from_zxid: i64,
        on_corrupt: OnCorrupt,
    ) -> Result<TxnLogReader, StorageError> {
        let dir = version_dir(log_dir);
        let files = list(&dir, LOG_PREFIX).map_err(StorageError::io(&dir))?;
        let first = first_file_holding(&files, from_zxid).unwrap_or(files.len());
        Ok(TxnLogReader {
            files: files[first..].iter().map(|f| f.path.clone()).collect(),
            current: None,
            from_zxid,
            on_corrupt,
            torn: Vec::new(),
            last_zxid: None,
            failed: false,
        })
    }

    /// The zxid in the name of the first file a reader from `from_zxid`
    /// would read (the newest starting at or before it, else the oldest),
    /// or `None` without log files. Lists the directory only; lets a
    /// caller tell cheaply whether the files can hold the txns after
    /// `from_zxid` (they can when this is at most `from_zxid`, or the txn
    /// right after it).
    pub fn first_file_zxid(log_dir: &Path, from_zxid: i64) -> Result<Option<i64>, StorageError> {
        let dir = version_dir(log_dir);
        let files = list(&dir, LOG_PREFIX).map_err(StorageError::io(&dir))?;
        Ok(first_file_holding(&files, from_zxid).map(|i| files[i].zxid))
    }

    /// The torn tails met so far.
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }

    /// The zxid of the last txn yielded.
    pub fn last_zxid(&self) -> Option<i64> {
        self.last_zxid
    }

    fn next_entry(&mut self) -> Result<Option<TxnEntry>, StorageError> {
        loop {
            let log = match self.current.as_mut() {
                Some(log) => log,
                None => match self.files.pop_front() {
                    None => return Ok(None),
                    Some(path) => self.current.insert(LogFile::open(&path)?),
                },
            };
            let next = match log.next() {
                Ok(next) => next,
                Err(StorageError::Corrupt { offset, .. })
                    if self.on_corrupt == OnCorrupt::Truncate =>
                {
                    self.cut_from_corruption(offset)?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            match next {
                Next::Txn {
                    offset, txn_bytes, ..
                } => {
                    let entry =
                        TxnEntry::from_bytes(txn_bytes).map_err(|source| StorageError::BadTxn {
                            path: log.path().to_path_buf(),
                            offset,
                            source,
                        })?;
                    if entry.header.zxid >= self.from_zxid {
                        self.last_zxid = Some(entry.header.zxid);
                        return Ok(Some(entry));
                    }
                }
                Next::End => self.current = None,
                Next::Torn { offset } => {
                    self.torn.push(TornTail {
                        path: log.path().to_path_buf(),
                        offset,
                        file_len: log.len(),
                        cause: TailCause::Torn,
                    });
                    self.current = None;
                }
            }
        }
    }

    /// [`OnCorrupt::Truncate`]: the history ends before the corrupt record
    /// at `offset` of the current file; it and every later file are to be
    /// cut. Nothing more is read.
    fn cut_from_corruption(&mut self, offset: u64) -> Result<(), StorageError> {
        if let Some(log) = self.current.take() {
            tracing::warn!(
                path = %log.path().display(),
                offset,
                "CRC check failed: cutting the txn log here, as asked (truncateCorruptTxnLog)"
            );
            self.torn.push(TornTail {
                path: log.path().to_path_buf(),
                offset,
                file_len: log.len(),
                cause: TailCause::Corrupt,
            });
        }
        for path in self.files.drain(..) {
            let file_len = std::fs::metadata(&path)
                .map_err(StorageError::io(&path))?
                .len();
            self.torn.push(TornTail {
                path,
                offset: 0,
                file_len,
                cause: TailCause::AfterCorrupt,
            });
        }
        Ok(())
    }
}

impl Iterator for TxnLogReader {
    type Item = Result<TxnEntry, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
