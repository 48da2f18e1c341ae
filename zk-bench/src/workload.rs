//! Pure pieces of the workloads: where keys live, which op comes next.

use rand::Rng;

/// One request type, also the name of its latency series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetData,
    SetData,
    Create,
    Delete,
}

impl Op {
    pub fn series(self) -> &'static str {
        match self {
            Op::GetData => "getData",
            Op::SetData => "setData",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
}

/// Reads with probability `read_ratio` percent, writes otherwise.
pub fn choose_mixed(rng: &mut impl Rng, read_ratio: u8) -> Op {
    if rng.gen_range(0..100u8) < read_ratio {
        Op::GetData
    } else {
        Op::SetData
    }
}

/// Paths of one run: everything lives below `<root>/<run>` so runs never
/// collide and cleanup is one known subtree.
#[derive(Debug, Clone)]
pub struct Layout {
    pub run: String,
}

impl Layout {
    pub fn new(root: &str, run_id: &str) -> Layout {
        Layout {
            run: format!("{root}/{run_id}"),
        }
    }

    /// Parent of the shared keys of read / write / mixed.
    pub fn keys_dir(&self) -> String {
        format!("{}/keys", self.run)
    }

    /// Key `i`, zero-padded so the names sort as numbers.
    pub fn key(&self, i: usize) -> String {
        format!("{}/keys/k{i:07}", self.run)
    }

    /// Parent of the nodes create-delete and populate make.
    pub fn scratch_dir(&self) -> String {
        format!("{}/nodes", self.run)
    }

    /// A node unique to (`worker`, `seq`).
    pub fn scratch(&self, worker: usize, seq: u64) -> String {
        format!("{}/nodes/w{worker}-{seq}", self.run)
    }

    /// Populate's node `i`.
    pub fn populated(&self, i: u64) -> String {
        format!("{}/nodes/n{i:08}", self.run)
    }

    /// The node the watch workload writes and watches.
    pub fn watched(&self) -> String {
        format!("{}/watched", self.run)
    }
}

/// The chain of parents to create for `path`, outermost first:
/// `/a/b/c` gives `/a`, `/a/b`, `/a/b/c`.
pub fn ancestors_and_self(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current.push('/');
        current.push_str(part);
        out.push(current.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn reads_out_of(n: usize, ratio: u8) -> usize {
        let mut rng = StdRng::seed_from_u64(7);
        (0..n)
            .filter(|_| choose_mixed(&mut rng, ratio) == Op::GetData)
            .count()
    }

    #[test]
    fn read_ratio_0_never_reads_and_100_always_reads() {
        assert_eq!(reads_out_of(1000, 0), 0);
        assert_eq!(reads_out_of(1000, 100), 1000);
    }

    #[test]
    fn read_ratio_90_gives_about_nine_reads_in_ten() {
        let reads = reads_out_of(10_000, 90);
        assert!((8_800..=9_200).contains(&reads), "{reads} reads");
    }

    #[test]
    fn keys_are_zero_padded_below_the_run() {
        let l = Layout::new("/zk-bench", "r1");
        assert_eq!(l.key(42), "/zk-bench/r1/keys/k0000042");
        assert_eq!(l.populated(7), "/zk-bench/r1/nodes/n00000007");
        assert_eq!(l.scratch(3, 9), "/zk-bench/r1/nodes/w3-9");
    }

    #[test]
    fn ancestors_start_at_the_top() {
        assert_eq!(ancestors_and_self("/a/b/c"), vec!["/a", "/a/b", "/a/b/c"]);
        assert!(ancestors_and_self("/").is_empty());
    }
}
