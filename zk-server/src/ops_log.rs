//! Log lines written for operators: one readable line each, zxids in hex
//! (as in the names of the snapshot and log files they are compared with).

use crate::storage::RecoveryReport;

/// The start-up recovery summary, e.g. `recovered to zxid 0x1a2: snapshot
/// 0x100 (.../snapshot.100) + 162 txns replayed; 1 torn log tail cut (4096
/// bytes); 0 orphaned ephemerals removed`.
pub fn recovery_line(report: &RecoveryReport, zxid: i64, orphans: usize) -> String {
    let base = match (&report.snapshot_zxid, &report.snapshot_path) {
        (Some(z), Some(path)) => format!("snapshot 0x{z:x} ({})", path.display()),
        (Some(z), None) => format!("snapshot 0x{z:x}"),
        _ => "no snapshot (empty tree)".to_string(),
    };
    let mut line = format!(
        "recovered to zxid 0x{zxid:x}: {base} + {} txns replayed",
        report.txns_replayed
    );
    if !report.torn_tails.is_empty() {
        line.push_str(&format!(
            "; {} torn log tail(s) cut ({} bytes)",
            report.torn_tails.len(),
            report.truncated_bytes
        ));
    }
    if orphans > 0 {
        line.push_str(&format!("; {orphans} orphaned ephemerals removed"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_recovery_line_names_snapshot_and_replay_in_hex() {
        let report = RecoveryReport {
            snapshot_zxid: Some(0x100),
            snapshot_path: Some(PathBuf::from("/d/version-2/snapshot.100")),
            txns_replayed: 162,
            last_zxid: 0x1a2,
            ..RecoveryReport::default()
        };
        assert_eq!(
            recovery_line(&report, 0x1a2, 0),
            "recovered to zxid 0x1a2: snapshot 0x100 (/d/version-2/snapshot.100) + 162 txns replayed"
        );
        let empty = RecoveryReport::default();
        assert_eq!(
            recovery_line(&empty, 0, 2),
            "recovered to zxid 0x0: no snapshot (empty tree) + 0 txns replayed; 2 orphaned ephemerals removed"
        );
    }
}
