//! Preallocation (ZAB.md §9.2, Apache's `FilePadding`): log files are grown
//! in big zero-filled steps so that an fdatasync after an append rarely has
//! to update the file size, which would cost a metadata write.

/// How close to the end of the file a write may come before it is grown.
pub(crate) const MARGIN: u64 = 4096;

/// The size a log file should have before writing at `position`, given its
/// current (preallocated) size: unchanged while there is more than
/// [`MARGIN`] room, else one `prealloc` step larger. When the position has
/// already run past the end (a batch bigger than the room left), the new
/// size is `position + prealloc` rounded down to a multiple of `prealloc`.
/// `prealloc == 0` disables preallocation.
pub(crate) fn padded_size(position: u64, current_size: u64, prealloc: u64) -> u64 {
    if prealloc == 0 || position + MARGIN < current_size {
        return current_size;
    }
    if position > current_size {
        let grown = position + prealloc;
        grown - grown % prealloc
    } else {
        current_size + prealloc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB64: u64 = 64 * 1024 * 1024;

    #[test]
    fn a_fresh_log_grows_to_header_plus_one_step() {
        assert_eq!(padded_size(16, 16, MIB64), 16 + MIB64);
    }

    #[test]
    fn room_beyond_the_margin_leaves_the_size_alone() {
        assert_eq!(
            padded_size(1000, 1000 + MARGIN + 1, MIB64),
            1000 + MARGIN + 1
        );
    }

    #[test]
    fn within_the_margin_grows_by_one_step() {
        assert_eq!(
            padded_size(5000, 5000 + MARGIN, 1 << 20),
            5000 + MARGIN + (1 << 20)
        );
    }

    #[test]
    fn an_overtaken_end_rounds_down_to_a_step_multiple() {
        assert_eq!(padded_size(2500, 1000, 1000), 3000);
    }

    #[test]
    fn zero_step_disables_preallocation() {
        assert_eq!(padded_size(16, 16, 0), 16);
    }
}
