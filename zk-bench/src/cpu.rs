//! CPU time used by this process, so a report can say whether the load
//! generator itself was the bottleneck (on a 2-core box it often is).

use std::time::Duration;

/// Linux reports utime/stime in clock ticks; USER_HZ is 100 on every
/// mainstream architecture (it is fixed by the kernel ABI, not by HZ).
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of this process (all threads), or `None` where
/// `/proc` is not available.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_time_from_stat(&stat)
}

/// Parses utime + stime (fields 14 and 15) out of a `/proc/<pid>/stat`
/// line. The command name (field 2) may contain spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn cpu_time_from_stat(stat: &str) -> Option<Duration> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state), so field N is index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// CPU use between two samples as a percentage of one core.
pub fn percent_of_core(
    before: Option<Duration>,
    after: Option<Duration>,
    wall: Duration,
) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    if wall.is_zero() {
        return None;
    }
    Some(used.as_secs_f64() * 100.0 / wall.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_command_name_is_parsed_from_the_last_paren() {
        let line = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0";
        assert_eq!(cpu_time_from_stat(line), Some(Duration::from_millis(3000)));
    }

    #[test]
    fn truncated_stat_line_gives_none() {
        assert_eq!(cpu_time_from_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn percent_of_core_is_cpu_over_wall_time() {
        let p = percent_of_core(
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(2)),
            Duration::from_secs(4),
        );
        assert_eq!(p, Some(25.0));
    }
}
