//! `ServiceProvider` (RECIPES.md §B17): picks one instance of a service
//! from a [`ServiceCache`] by a [`ProviderStrategy`], skipping disabled
//! instances and those the caller reported failing (Curator's
//! `DownInstancePolicy`: after `error_threshold` errors an instance is
//! left out until `timeout` has passed since its last error).
//!
//! The strategies and the down-instance bookkeeping are pure; only the
//! cache does I/O.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::cache::Events;
use crate::discovery::cache::{ServiceCache, ServiceCacheEvent};
use crate::discovery::instance::ServiceInstance;
use crate::framework::Curator;

/// How [`ServiceProvider::get_instance`] chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderStrategy {
    /// Each call takes the next instance, in id order (Curator's default).
    #[default]
    RoundRobin,
    /// A uniformly random instance per call.
    Random,
    /// The same instance for as long as it is available; round robin
    /// picks a new one when it goes.
    Sticky,
}

/// When a failing instance is left out; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownInstancePolicy {
    /// How long an instance stays down after too many errors.
    pub timeout: Duration,
    /// Errors within `timeout` that mark an instance down.
    pub error_threshold: u32,
}

impl Default for DownInstancePolicy {
    /// Curator's: 30 s after two errors.
    fn default() -> Self {
        DownInstancePolicy {
            timeout: Duration::from_secs(30),
            error_threshold: 2,
        }
    }
}

/// Errors noted per instance id.
#[derive(Debug, Default)]
struct DownInstances {
    errors: HashMap<String, (u32, Instant)>,
}

impl DownInstances {
    fn note_error(&mut self, policy: &DownInstancePolicy, id: &str, now: Instant) {
        self.forget_expired(policy, now);
        let entry = self.errors.entry(id.to_string()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
    }

    fn is_down(&self, policy: &DownInstancePolicy, id: &str, now: Instant) -> bool {
        self.errors.get(id).is_some_and(|(count, last)| {
            *count >= policy.error_threshold && now.duration_since(*last) < policy.timeout
        })
    }

    fn forget_expired(&mut self, policy: &DownInstancePolicy, now: Instant) {
        self.errors
            .retain(|_, (_, last)| now.duration_since(*last) < policy.timeout);
    }
}

/// The choosing state of one provider.
#[derive(Debug, Default)]
struct Chooser {
    next: usize,
    sticky: Option<String>,
}

impl Chooser {
    /// One of `candidates` (already filtered and in id order) by `strategy`.
    fn pick(
        &mut self,
        strategy: ProviderStrategy,
        candidates: &[ServiceInstance],
        rng: &mut impl Rng,
    ) -> Option<ServiceInstance> {
        if candidates.is_empty() {
            return None;
        }
        match strategy {
            ProviderStrategy::RoundRobin => Some(self.round_robin(candidates)),
            ProviderStrategy::Random => {
                Some(candidates[rng.gen_range(0..candidates.len())].clone())
            }
            ProviderStrategy::Sticky => {
                let kept = self
                    .sticky
                    .as_ref()
                    .and_then(|id| candidates.iter().find(|i| &i.id == id));
                let chosen = match kept {
                    Some(instance) => instance.clone(),
                    None => self.round_robin(candidates),
                };
                self.sticky = Some(chosen.id.clone());
                Some(chosen)
            }
        }
    }

    fn round_robin(&mut self, candidates: &[ServiceInstance]) -> ServiceInstance {
        let chosen = candidates[self.next % candidates.len()].clone();
        self.next = self.next.wrapping_add(1);
        chosen
    }
}

/// Settings for a [`ServiceProvider`].
#[derive(Debug, Clone)]
pub struct ServiceProviderBuilder {
    curator: Curator,
    base_path: String,
    name: String,
    strategy: ProviderStrategy,
    down_policy: DownInstancePolicy,
}

impl ServiceProviderBuilder {
    /// How an instance is picked (default: round robin).
    pub fn strategy(mut self, strategy: ProviderStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// When instances that report errors are left out.
    pub fn down_instance_policy(mut self, policy: DownInstancePolicy) -> Self {
        self.down_policy = policy;
        self
    }

    /// Starts the provider's cache; its events come back too.
    pub fn start(self) -> (ServiceProvider, Events<ServiceCacheEvent>) {
        let (cache, events) = ServiceCache::start(&self.curator, &self.base_path, &self.name);
        let provider = ServiceProvider {
            cache,
            strategy: self.strategy,
            down_policy: self.down_policy,
            down: Mutex::new(DownInstances::default()),
            chooser: Mutex::new(Chooser::default()),
        };
        (provider, events)
    }
}

/// Hands out instances of one service.
#[derive(Debug)]
pub struct ServiceProvider {
    cache: ServiceCache,
    strategy: ProviderStrategy,
    down_policy: DownInstancePolicy,
    down: Mutex<DownInstances>,
    chooser: Mutex<Chooser>,
}

impl ServiceProvider {
    /// A provider of `name`'s instances under `base_path` (round robin,
    /// Curator's down-instance policy).
    pub fn builder(curator: &Curator, base_path: &str, name: &str) -> ServiceProviderBuilder {
        ServiceProviderBuilder {
            curator: curator.clone(),
            base_path: base_path.to_string(),
            name: name.to_string(),
            strategy: ProviderStrategy::default(),
            down_policy: DownInstancePolicy::default(),
        }
    }

    /// One usable instance, or `None` when there is none (yet: the cache
    /// fills in the background; wait for its `Initialized` event).
    pub fn get_instance(&self) -> Option<ServiceInstance> {
        let candidates = self.get_all_instances();
        self.chooser.lock().unwrap_or_else(|e| e.into_inner()).pick(
            self.strategy,
            &candidates,
            &mut rand::thread_rng(),
        )
    }

    /// Every usable instance (enabled and not down), in id order.
    pub fn get_all_instances(&self) -> Vec<ServiceInstance> {
        let now = Instant::now();
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let mut usable: Vec<ServiceInstance> = self
            .cache
            .instances()
            .into_iter()
            .filter(|i| i.enabled && !down.is_down(&self.down_policy, &i.id, now))
            .collect();
        usable.sort_by(|a, b| a.id.cmp(&b.id));
        usable
    }

    /// Reports that `instance` failed; enough reports leave it out for a
    /// while (see [`DownInstancePolicy`]).
    pub fn note_error(&self, instance: &ServiceInstance) {
        self.down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note_error(&self.down_policy, &instance.id, Instant::now());
    }

    /// Stops the cache.
    pub async fn close(self) {
        self.cache.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn instances(ids: &[&str]) -> Vec<ServiceInstance> {
        ids.iter()
            .map(|id| ServiceInstance::new("api").with_id(id))
            .collect()
    }

    fn ids(picked: &[Option<ServiceInstance>]) -> Vec<String> {
        picked
            .iter()
            .map(|i| i.as_ref().map(|i| i.id.clone()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_the_instances_in_order() {
        let all = instances(&["a", "b", "c"]);
        let mut chooser = Chooser::default();
        let mut rng = StdRng::seed_from_u64(1);
        let picked: Vec<_> = (0..4)
            .map(|_| chooser.pick(ProviderStrategy::RoundRobin, &all, &mut rng))
            .collect();
        assert_eq!(ids(&picked), ["a", "b", "c", "a"]);
    }

    #[test]
    fn no_instances_means_none() {
        let mut rng = StdRng::seed_from_u64(1);
        for strategy in [
            ProviderStrategy::RoundRobin,
            ProviderStrategy::Random,
            ProviderStrategy::Sticky,
        ] {
            assert_eq!(Chooser::default().pick(strategy, &[], &mut rng), None);
        }
    }

    #[test]
    fn random_picks_only_among_the_instances_and_reaches_each() {
        let all = instances(&["a", "b", "c"]);
        let mut chooser = Chooser::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let picked = chooser.pick(ProviderStrategy::Random, &all, &mut rng);
            seen.insert(picked.map(|i| i.id).unwrap_or_default());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn sticky_keeps_its_instance_until_it_disappears() {
        let all = instances(&["a", "b", "c"]);
        let mut chooser = Chooser::default();
        let mut rng = StdRng::seed_from_u64(1);
        let first = chooser.pick(ProviderStrategy::Sticky, &all, &mut rng);
        let again = chooser.pick(ProviderStrategy::Sticky, &all, &mut rng);
        assert_eq!(ids(&[first.clone(), again]), ["a", "a"]);
        let without_a = instances(&["b", "c"]);
        let moved = chooser.pick(ProviderStrategy::Sticky, &without_a, &mut rng);
        assert_ne!(moved.as_ref().map(|i| i.id.as_str()), Some("a"));
        let stays = chooser.pick(ProviderStrategy::Sticky, &without_a, &mut rng);
        assert_eq!(moved, stays);
    }

    #[test]
    fn an_instance_is_down_after_the_error_threshold_until_the_timeout() {
        let policy = DownInstancePolicy {
            timeout: Duration::from_secs(10),
            error_threshold: 2,
        };
        let mut down = DownInstances::default();
        let t0 = Instant::now();
        down.note_error(&policy, "a", t0);
        assert!(!down.is_down(&policy, "a", t0));
        down.note_error(&policy, "a", t0 + Duration::from_secs(1));
        assert!(down.is_down(&policy, "a", t0 + Duration::from_secs(2)));
        assert!(!down.is_down(&policy, "b", t0 + Duration::from_secs(2)));
        assert!(!down.is_down(&policy, "a", t0 + Duration::from_secs(11)));
    }

    #[test]
    fn errors_older_than_the_timeout_are_forgotten() {
        let policy = DownInstancePolicy {
            timeout: Duration::from_secs(10),
            error_threshold: 2,
        };
        let mut down = DownInstances::default();
        let t0 = Instant::now();
        down.note_error(&policy, "a", t0);
        down.note_error(&policy, "a", t0 + Duration::from_secs(20));
        assert!(!down.is_down(&policy, "a", t0 + Duration::from_secs(21)));
    }
}
