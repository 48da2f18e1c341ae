//! A snapshot file written as a stream, with bounded memory, whose first
//! part is only known at the end: a fuzzy snapshot's nodes (the tail) are
//! produced while the tree keeps changing and streamed to a temp file; the
//! sessions and the ACL cache (the head) come last (db/fuzzy.rs). `finish`
//! then writes `ZKSN` header + head into the snapshot's temp file, appends
//! the tail with an in-kernel copy, adds the seal (the Adler-32 of the
//! three, combined from the tail's sum computed while it streamed, so the
//! tail is never read back), fsyncs and renames into place
//! (snapfile.rs: a crash leaves no snapshot or a whole one).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use zk_proto::disk::{encode_seal, zxid_file_name, Adler32, FileHeader};
use zk_proto::Jute;

use crate::storage::faults::{self, DiskOp, FileKind};
use crate::storage::files::{ensure_version_dir, fsync_dir, SNAPSHOT_PREFIX};

/// Zlib's `adler32_combine`: the Adler-32 of `a ++ b` from the sums of
/// `a` and `b` and the length of `b`.
pub fn adler32_combine(adler_a: u32, adler_b: u32, len_b: u64) -> u32 {
    const BASE: u64 = 65521;
    let rem = len_b % BASE;
    let a1 = u64::from(adler_a & 0xffff);
    let b1 = u64::from(adler_a >> 16);
    let a2 = u64::from(adler_b & 0xffff);
    let b2 = u64::from(adler_b >> 16);
    // s1 = a1 + a2 - 1; s2 = b1 + b2 + rem * (a1 - 1), all mod BASE.
    let s1 = (a1 + a2 + BASE - 1) % BASE;
    let s2 = (b1 + b2 + rem * a1 % BASE + BASE - rem) % BASE;
    ((s2 << 16) | s1) as u32
}

/// `snapshot.<zxid>` in the making. Dropped without `finish`, it removes
/// its temp files.
#[derive(Debug)]
pub struct SnapshotAssembler {
    dir: PathBuf,
    zxid: i64,
    tail_path: PathBuf,
    tail: Option<BufWriter<File>>,
    tail_sum: Adler32,
    tail_len: u64,
}

impl SnapshotAssembler {
    /// Starts `<snap_dir>/version-2/snapshot.<zxid hex>`.
    pub fn create(snap_dir: &Path, zxid: i64) -> io::Result<SnapshotAssembler> {
        let dir = ensure_version_dir(snap_dir)?;
        let name = zxid_file_name(SNAPSHOT_PREFIX, zxid);
        // Not named `snapshot.*`: no reader or purge takes it for one.
        let tail_path = dir.join(format!(".{name}.tail.tmp"));
        faults::check(FileKind::Snapshot, DiskOp::Create, &tail_path)?;
        // Read back by `finish` (the copy into the snapshot).
        let tail = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tail_path)?;
        Ok(SnapshotAssembler {
            dir,
            zxid,
            tail_path,
            tail: Some(BufWriter::with_capacity(1 << 20, tail)),
            tail_sum: Adler32::new(),
            tail_len: 0,
        })
    }

    /// Appends bytes to the tail.
    pub fn write_tail(&mut self, bytes: &[u8]) -> io::Result<()> {
        faults::check(FileKind::Snapshot, DiskOp::Write, &self.tail_path)?;
        let tail = self.tail.as_mut().ok_or_else(finished)?;
        tail.write_all(bytes)?;
        self.tail_sum.update(bytes);
        self.tail_len += bytes.len() as u64;
        Ok(())
    }

    /// Writes the whole file with `head` in front of the tail, makes it
    /// durable and renames it into place.
    pub fn finish(mut self, head: &[u8]) -> io::Result<PathBuf> {
        let mut tail = self.tail.take().ok_or_else(finished)?.into_inner()?;
        let name = zxid_file_name(SNAPSHOT_PREFIX, self.zxid);
        let target = self.dir.join(&name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let result = self.assemble(&temp, head, &mut tail).and_then(|()| {
            faults::check(FileKind::Snapshot, DiskOp::Rename, &target)?;
            fs::rename(&temp, &target)
        });
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        fsync_dir(&self.dir)?;
        Ok(target)
    }

    fn assemble(&self, temp: &Path, head: &[u8], tail: &mut File) -> io::Result<()> {
        let mut first = BytesMut::new();
        FileHeader::snapshot().encode(&mut first);
        first.extend_from_slice(head);
        let sum = adler32_combine(
            Adler32::checksum(&first),
            self.tail_sum.value(),
            self.tail_len,
        );
        let mut seal = BytesMut::new();
        encode_seal(sum, &mut seal);

        faults::check(FileKind::Snapshot, DiskOp::Create, temp)?;
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)?;
        faults::check(FileKind::Snapshot, DiskOp::Write, temp)?;
        out.write_all(&first)?;
        tail.seek(SeekFrom::Start(0))?;
        // File to file: the kernel copies (copy_file_range), no read-back.
        let copied = io::copy(tail, &mut out)?;
        if copied != self.tail_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("snapshot tail: copied {copied} of {} bytes", self.tail_len),
            ));
        }
        out.write_all(&seal)?;
        faults::check(FileKind::Snapshot, DiskOp::Sync, temp)?;
        out.sync_all()
    }
}

fn finished() -> io::Error {
    io::Error::other("snapshot already finished")
}

impl Drop for SnapshotAssembler {
    fn drop(&mut self) {
        self.tail = None;
        let _ = fs::remove_file(&self.tail_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_sums_is_summing_the_concatenation() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 5551, 5552, 12_345, 20_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                adler32_combine(Adler32::checksum(a), Adler32::checksum(b), b.len() as u64),
                Adler32::checksum(&data),
                "split at {split}"
            );
        }
        let big = vec![0xffu8; 200_000];
        assert_eq!(
            adler32_combine(Adler32::checksum(&big), Adler32::checksum(&big), 200_000),
            Adler32::checksum(&[big.clone(), big].concat())
        );
    }

    #[test]
    fn an_assembled_snapshot_is_the_plain_one() {
        let plain_dir = tempfile::tempdir().unwrap();
        let streamed_dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (head, tail) = body.split_at(1234);
        let plain = crate::storage::write_snapshot(plain_dir.path(), 9, &body).unwrap();
        let mut asm = SnapshotAssembler::create(streamed_dir.path(), 9).unwrap();
        for chunk in tail.chunks(777) {
            asm.write_tail(chunk).unwrap();
        }
        let streamed = asm.finish(head).unwrap();
        assert_eq!(fs::read(&streamed).unwrap(), fs::read(&plain).unwrap());
        let names: Vec<_> = fs::read_dir(streamed.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("snapshot.9")]);
    }

    #[test]
    fn an_abandoned_snapshot_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut asm = SnapshotAssembler::create(dir.path(), 3).unwrap();
        asm.write_tail(b"nodes").unwrap();
        drop(asm);
        assert_eq!(
            fs::read_dir(dir.path().join("version-2")).unwrap().count(),
            0
        );
    }
}
