//! Seeded random scripts: creates, sets, deletes, multis, watches and
//! session closes over a small tree, so that paths collide often and every
//! error path gets exercised, across several sessions.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_proto::{AddWatchMode, CreateMode, MultiOp, Request};

use super::ops::*;
use super::script::Script;

/// Sessions a random script juggles.
const SLOTS: usize = 3;

/// The one session that sets persistent watches, and never one-shot ones.
/// Apache 3.8.0 keeps one watch mode per path and session: a one-shot
/// watch on a path downgrades the same session's persistent watch there,
/// and a persistent-recursive watch replaces a persistent one (and back).
/// Later releases keep each mode (ZOOKEEPER-4466), and so do we
/// (docs/COMPATIBILITY.md), so scripts keep the two kinds on different
/// sessions and give each path one persistent mode per session.
const PERSISTENT_WATCHER: usize = 2;

/// Child names: few, so ops keep hitting the same nodes.
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// The script for `seed`: `len` random steps under `/<root>`.
pub fn script(root: &str, seed: u64, len: usize) -> Script {
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        root: format!("/{root}"),
        watch_modes: HashMap::new(),
    };
    let mut s = Script::new(root)
        .connect(0)
        .op(0, create(&gen.root, "", CreateMode::Persistent));
    for slot in 1..SLOTS {
        s = s.connect(slot);
    }
    for _ in 0..len {
        let slot = gen.rng.gen_range(0..SLOTS);
        // One step in forty closes a session and opens a fresh one in its
        // slot: its ephemerals go and their watchers hear of it.
        if gen.rng.gen_ratio(1, 40) {
            s = s.close(slot).connect(slot);
            if slot == PERSISTENT_WATCHER {
                gen.watch_modes.clear();
            }
            continue;
        }
        s = s.op(slot, gen.request(slot));
    }
    s
}

struct Gen {
    rng: StdRng,
    root: String,
    /// The persistent mode the watcher's current session uses per path.
    watch_modes: HashMap<String, AddWatchMode>,
}

impl Gen {
    /// A path one or two levels below the root.
    fn path(&mut self) -> String {
        let first = NAMES[self.rng.gen_range(0..NAMES.len())];
        if self.rng.gen_bool(0.4) {
            let second = NAMES[self.rng.gen_range(0..NAMES.len())];
            format!("{}/{first}/{second}", self.root)
        } else {
            format!("{}/{first}", self.root)
        }
    }

    /// -1 (any) half the time, else a small version that may or may not match.
    fn version(&mut self) -> i32 {
        if self.rng.gen_bool(0.5) {
            -1
        } else {
            self.rng.gen_range(0..3)
        }
    }

    fn mode(&mut self) -> CreateMode {
        match self.rng.gen_range(0..4) {
            0 => CreateMode::Ephemeral,
            1 => CreateMode::PersistentSequential,
            2 => CreateMode::EphemeralSequential,
            _ => CreateMode::Persistent,
        }
    }

    fn value(&mut self) -> String {
        let n = self.rng.gen_range(0..1000);
        format!("v{n}")
    }

    fn request(&mut self, slot: usize) -> Request {
        let path = self.path();
        let watch = self.rng.gen_bool(0.5) && slot != PERSISTENT_WATCHER;
        match self.rng.gen_range(0..100) {
            0..=19 => {
                let (value, mode) = (self.value(), self.mode());
                if self.rng.gen_bool(0.5) {
                    create(&path, &value, mode)
                } else {
                    create2(&path, &value, mode)
                }
            }
            20..=31 => {
                let (value, version) = (self.value(), self.version());
                set_data(&path, &value, version)
            }
            32..=43 => {
                let version = self.version();
                delete(&path, version)
            }
            44..=51 => exists(&path, watch),
            52..=59 => get_data(&path, watch),
            60..=65 => get_children(&path, watch),
            66..=69 => get_children2(&path, watch),
            70..=81 => {
                let n = self.rng.gen_range(1..=3);
                let ops = (0..n).map(|_| self.multi_op()).collect();
                multi(ops)
            }
            82..=84 => {
                let other = self.path();
                multi_read(vec![m_get_data(&path), m_get_children(&other)])
            }
            85..=87 if slot == PERSISTENT_WATCHER => {
                let drawn = if self.rng.gen_bool(0.5) {
                    AddWatchMode::Persistent
                } else {
                    AddWatchMode::PersistentRecursive
                };
                let mode = *self.watch_modes.entry(path.clone()).or_insert(drawn);
                add_watch(&path, mode)
            }
            88..=90 => get_all_children_number(&self.root.clone()),
            91..=93 => get_ephemerals(&self.root.clone()),
            94..=95 => sync(&path),
            _ => get_acl(&path),
        }
    }

    fn multi_op(&mut self) -> MultiOp {
        let path = self.path();
        match self.rng.gen_range(0..4) {
            0 => {
                let (value, mode) = (self.value(), self.mode());
                m_create(&path, &value, mode)
            }
            1 => {
                let version = self.version();
                m_delete(&path, version)
            }
            2 => {
                let (value, version) = (self.value(), self.version());
                m_set(&path, &value, version)
            }
            _ => {
                let version = self.version();
                m_check(&path, version)
            }
        }
    }
}
