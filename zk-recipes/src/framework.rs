//! The framework every recipe runs on (Curator's `CuratorFramework`):
//!
//! * one current [`Client`]; when its session ends (server-side expiry, or
//!   the simulated expiry of RECIPES.md §A1) a fresh client with a new
//!   session replaces it, as Curator rebuilds its ZooKeeper handle;
//! * a task mapping the client's session states to [`ConnectionState`]s
//!   through the pure [`ConnectionStateMachine`], published on a broadcast
//!   channel;
//! * the retry loop (§A2), parents as containers (§A3), protected
//!   sequential creates with loss recovery (§A4) and guaranteed deletes
//!   (§A6).

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;
use zk_client::{Acl, Client, ClientBuilder, CreateMode, SessionState, StateStream};

use crate::acl::{AclProvider, OpenAclProvider, SharedAclProvider};
use crate::connection::{ConnectionState, ConnectionStateMachine, ErrorPolicy, SessionEvent};
use crate::error::{Error, Result};
use crate::local_addr::default_node_data;
use crate::paths::{join, parent, protected_prefix, uuid_v4};
use crate::retry::{Retriable, RetryPolicy};

/// How many connection states a slow listener may fall behind before it
/// skips the oldest (Curator keeps 25).
const STATE_BUFFER: usize = 64;

/// Pause between background retries of a guaranteed delete.
const BACKGROUND_RETRY: Duration = Duration::from_millis(250);

/// Settings for a [`Curator`]; see [`Curator::builder`].
#[derive(Debug, Clone)]
pub struct CuratorBuilder {
    connect_string: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    retry: RetryPolicy,
    error_policy: ErrorPolicy,
    default_data: Option<Bytes>,
    expiry_percent: u32,
    namespace: Option<String>,
    auth: Vec<(String, Vec<u8>)>,
    acl_provider: Option<SharedAclProvider>,
    read_only: bool,
    request_timeout: Option<Duration>,
    runtime: Option<tokio::runtime::Handle>,
}

impl CuratorBuilder {
    /// Requested session timeout (Curator's default: 60 s).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long an operation waits for a connection before it counts as a
    /// connection loss (Curator's default: 15 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The retry policy of every operation (default: exponential backoff, 1 s, 3 retries).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Which connection states recipes treat as errors (default: Suspended and Lost).
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.error_policy = policy;
        self
    }

    /// Data written by recipes that create nodes without explicit data
    /// (default: the local IP address as text, §A5).
    pub fn default_data(mut self, data: impl Into<Bytes>) -> Self {
        self.default_data = Some(data.into());
        self
    }

    /// Percentage of the session timeout spent Suspended before Lost is
    /// posted and a new session started (100; 0 turns it off).
    pub fn simulated_expiry_percent(mut self, percent: u32) -> Self {
        self.expiry_percent = percent;
        self
    }

    /// Puts every path of this framework under `/<namespace>` (Curator's
    /// `namespace`): paths given to and returned by the framework, its
    /// recipes and its client are relative to the namespace. The namespace
    /// node is created, as a container, by the first create below it.
    ///
    /// Realised as a client-side chroot appended to the connect string's
    /// own (so the prefixing and un-prefixing, including watch events, is
    /// the client's). A nested namespace (`a/b`) needs its parent to exist.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Credentials every session of this framework sends before any
    /// request, replayed on reconnect and on every new session (Curator's
    /// `authorization`). May be given more than once.
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.auth.push((scheme.to_string(), auth.to_vec()));
        self
    }

    /// The ACLs every recipe node and every parent container of this
    /// framework is created with (Curator's `aclProvider`). Default: the
    /// open ACL (`world:anyone`, all permissions).
    pub fn acl_provider(mut self, provider: impl AclProvider + 'static) -> Self {
        self.acl_provider = Some(SharedAclProvider(Arc::new(provider)));
        self
    }

    /// Accept read-only servers (Curator's `canBeReadOnly`): the
    /// connection state is then `ReadOnly` while on one.
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Fail a single request with `RequestTimeout` (retriable) when its
    /// reply takes longer than `timeout`. Default: no limit.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The tokio runtime the framework's and its recipes' background tasks
    /// run on. Default: the runtime `build`/`connect` is called in; with
    /// this set, the framework and its recipes can be built from any
    /// thread.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    fn client_builder(&self) -> ClientBuilder {
        let connect = namespaced_connect_string(&self.connect_string, self.namespace.as_deref());
        let mut builder = Client::builder(&connect)
            .session_timeout(self.session_timeout)
            .connection_timeout(self.connection_timeout)
            .read_only(self.read_only);
        if let Some(timeout) = self.request_timeout {
            builder = builder.request_timeout(timeout);
        }
        for (scheme, auth) in &self.auth {
            builder = builder.auth(scheme, auth);
        }
        builder
    }

    /// Starts the framework without waiting for a connection. Fails with
    /// [`Error::NoRuntime`] outside a tokio runtime unless one was given
    /// with [`runtime`](Self::runtime).
    pub fn build(self) -> Result<Curator> {
        if let Some(namespace) = &self.namespace {
            validate_namespace(namespace)?;
        }
        let runtime = match self.runtime.clone() {
            Some(handle) => handle,
            None => tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?,
        };
        let client_builder = self.client_builder();
        let client = {
            let _entered = runtime.enter();
            client_builder.start()?
        };
        let (states, _) = broadcast::channel(STATE_BUFFER);
        let inner = Arc::new(Inner {
            client_builder,
            connection_timeout: self.connection_timeout,
            retry: self.retry,
            error_policy: self.error_policy,
            default_data: self.default_data.unwrap_or_else(default_node_data),
            namespace: self.namespace,
            acl_provider: self
                .acl_provider
                .unwrap_or_else(|| SharedAclProvider(Arc::new(OpenAclProvider))),
            runtime: runtime.clone(),
            handle: Mutex::new(client.clone()),
            generation: watch::Sender::new(0),
            states,
            current: watch::Sender::new(None),
            closed: watch::Sender::new(false),
        });
        let machine = ConnectionStateMachine::new(self.session_timeout)
            .with_expiry_percent(self.expiry_percent);
        runtime.spawn(watch_connection(Arc::downgrade(&inner), client, machine));
        Ok(Curator { inner })
    }

    /// Starts the framework and waits up to the connection timeout for the
    /// first connection.
    pub async fn connect(self) -> Result<Curator> {
        let timeout = self.connection_timeout;
        let curator = self.build()?;
        // Wait for the posted state, not just the client's: callers that
        // subscribe next must not see this first Connected.
        let mut posted = curator.inner.current.subscribe();
        let connected = tokio::time::timeout(
            timeout,
            posted.wait_for(|s| s.is_some_and(ConnectionState::is_connected)),
        )
        .await;
        if connected.is_ok_and(|r| r.is_ok()) {
            Ok(curator)
        } else {
            curator.close().await;
            Err(zk_client::Error::Timeout.into())
        }
    }
}

#[derive(Debug)]
struct Inner {
    client_builder: ClientBuilder,
    connection_timeout: Duration,
    retry: RetryPolicy,
    error_policy: ErrorPolicy,
    default_data: Bytes,
    namespace: Option<String>,
    acl_provider: SharedAclProvider,
    /// Where background tasks run (so recipes need no runtime context).
    runtime: tokio::runtime::Handle,
    /// The current client (replaced after a session ends).
    handle: Mutex<Client>,
    /// Bumped each time the client is replaced (Curator's instance index).
    generation: watch::Sender<u64>,
    states: broadcast::Sender<ConnectionState>,
    current: watch::Sender<Option<ConnectionState>>,
    closed: watch::Sender<bool>,
}

impl Inner {
    fn client(&self) -> Client {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn post(&self, state: ConnectionState) {
        tracing::debug!(?state, "connection state");
        // Broadcast first, then record: whoever waits on `current` (as
        // `connect` does) and subscribes afterwards must not receive this
        // state again from the broadcast.
        // No receivers is fine: nobody is listening yet.
        let _ = self.states.send(state);
        self.current.send_replace(Some(state));
    }

    /// Replaces the client with a fresh one (new session) and returns it;
    /// the old one is closed so it can never resume its session.
    fn rebuild(&self) -> Option<Client> {
        if *self.closed.borrow() {
            return None;
        }
        let started = {
            let _entered = self.runtime.enter();
            self.client_builder.start()
        };
        let fresh = match started {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(%e, "cannot start a new client");
                return None;
            }
        };
        let old = std::mem::replace(
            &mut *self.handle.lock().unwrap_or_else(|e| e.into_inner()),
            fresh.clone(),
        );
        self.generation.send_modify(|g| *g += 1);
        self.runtime.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), old.close()).await;
        });
        Some(fresh)
    }
}

/// The session event a client state means, if any.
fn session_event(state: SessionState, client: &Client) -> Option<SessionEvent> {
    match state {
        SessionState::Connected => Some(SessionEvent::Connected {
            session_id: client.session_id(),
            timeout: client.session_timeout(),
        }),
        SessionState::ConnectedReadOnly => Some(SessionEvent::ConnectedReadOnly {
            session_id: client.session_id(),
            timeout: client.session_timeout(),
        }),
        SessionState::Disconnected => Some(SessionEvent::Disconnected),
        SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => {
            Some(SessionEvent::Expired)
        }
        SessionState::Connecting => None,
    }
}

/// The connection task: feeds the state machine from the current client's
/// state stream and its own clock, posts the resulting states, and starts
/// a new session when the old one is over. Stops when the framework is
/// closed or dropped.
async fn watch_connection(
    weak: Weak<Inner>,
    mut client: Client,
    mut machine: ConnectionStateMachine,
) {
    let mut closed = match weak.upgrade() {
        Some(inner) => inner.closed.subscribe(),
        None => return,
    };
    let mut states: StateStream = client.state_stream();
    loop {
        let deadline = machine.lost_deadline();
        let session_over = tokio::select! {
            _ = closed.changed() => return,
            next = states.next() => {
                let Some(inner) = weak.upgrade() else { return };
                match next {
                    Some(state) => {
                        let posted = session_event(state, &client)
                            .map(|event| machine.on_event(event, Instant::now()))
                            .unwrap_or_default();
                        posted.into_iter().for_each(|s| inner.post(s));
                        state.is_terminal()
                    }
                    // The feed ends only after a final state.
                    None => true,
                }
            }
            _ = sleep_until_opt(deadline) => {
                let Some(inner) = weak.upgrade() else { return };
                match machine.on_tick(Instant::now()) {
                    Some(lost) => {
                        inner.post(lost);
                        true
                    }
                    None => false,
                }
            }
        };
        if session_over {
            let Some(inner) = weak.upgrade() else { return };
            if *inner.closed.borrow() {
                return;
            }
            if client.state() == SessionState::AuthFailed {
                // Do not hammer a server that refuses our credentials.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            match inner.rebuild() {
                Some(fresh) => {
                    client = fresh;
                    states = client.state_stream();
                }
                None => return,
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => futures::future::pending().await,
    }
}

/// A handle on the framework; cheap to clone. Recipes hold one.
#[derive(Debug, Clone)]
pub struct Curator {
    inner: Arc<Inner>,
}

impl Curator {
    /// A builder with Curator's defaults: 60 s sessions, 15 s connection
    /// timeout, exponential backoff (1 s, 3 retries), standard error policy.
    pub fn builder(connect_string: &str) -> CuratorBuilder {
        CuratorBuilder {
            connect_string: connect_string.to_string(),
            session_timeout: Duration::from_secs(60),
            connection_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            error_policy: ErrorPolicy::default(),
            default_data: None,
            expiry_percent: 100,
            namespace: None,
            auth: Vec::new(),
            acl_provider: None,
            read_only: false,
            request_timeout: None,
            runtime: None,
        }
    }

    /// Spawns a background task on the framework's runtime (works from
    /// any thread, inside a runtime or not).
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.runtime.spawn(future)
    }

    /// Spawns a task whose result nobody waits for.
    pub(crate) fn spawn_detached<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.runtime.spawn(future);
    }

    /// The ACL recipes create `path` with.
    pub fn acl_for(&self, path: &str) -> Vec<Acl> {
        self.inner.acl_provider.acl_for(path)
    }

    pub(crate) fn acls(&self) -> SharedAclProvider {
        self.inner.acl_provider.clone()
    }

    /// The current client once connected (waiting up to the connection
    /// timeout), or `ConnectionLoss`.
    pub(crate) async fn connected_client_or_loss(&self) -> Result<Client> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        match self.connected_client(self.inner.connection_timeout).await {
            Some(client) => Ok(client),
            None if self.is_closed() => Err(Error::Closed),
            None => Err(zk_client::Error::ConnectionLoss.into()),
        }
    }

    /// The namespace every path is relative to, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.inner.namespace.as_deref()
    }

    /// The current client. It may be replaced after a session ends; take
    /// a fresh one for each operation.
    pub fn client(&self) -> Client {
        self.inner.client()
    }

    /// How many times the client has been replaced by a new session.
    pub fn generation(&self) -> u64 {
        *self.inner.generation.borrow()
    }

    /// The current session id (0 before the first session).
    pub fn session_id(&self) -> i64 {
        self.client().session_id()
    }

    /// The framework's retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The framework's error policy.
    pub fn error_policy(&self) -> ErrorPolicy {
        self.inner.error_policy
    }

    /// The payload for nodes created without explicit data (§A5).
    pub fn default_data(&self) -> Bytes {
        self.inner.default_data.clone()
    }

    /// The last posted connection state.
    pub fn connection_state(&self) -> Option<ConnectionState> {
        *self.inner.current.borrow()
    }

    /// Connection states from now on (a receiver that skips ahead when it
    /// falls behind).
    pub fn subscribe_states(&self) -> broadcast::Receiver<ConnectionState> {
        self.inner.states.subscribe()
    }

    /// Connection states from now on, as a stream.
    pub fn connection_states(&self) -> impl Stream<Item = ConnectionState> + Send + 'static {
        BroadcastStream::new(self.subscribe_states()).filter_map(|r| async move { r.ok() })
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves when the framework is closed.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.subscribe();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Waits until the current client is connected; false on timeout or
    /// close.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        self.connected_client(timeout).await.is_some()
    }

    /// The current client once it is connected, following replacements.
    async fn connected_client(&self, timeout: Duration) -> Option<Client> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut generation = self.inner.generation.subscribe();
        let mut closed = self.inner.closed.subscribe();
        loop {
            if self.is_closed() {
                return None;
            }
            generation.borrow_and_update();
            let client = self.client();
            if client.state().is_connected() {
                return Some(client);
            }
            tokio::select! {
                _ = client.wait_for_state(|s| s.is_connected() || s.is_terminal()) => {
                    if client.state().is_terminal() {
                        // Wait for the connection task to swap in a new client.
                        tokio::select! {
                            _ = generation.changed() => {}
                            _ = tokio::time::sleep_until(deadline) => return None,
                        }
                    }
                }
                _ = generation.changed() => {}
                _ = closed.changed() => return None,
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Runs `op` on a connected client under the retry policy (Curator's
    /// `RetryLoop`): waits up to the connection timeout for a connection,
    /// retries the retriable errors, returns the others at once.
    pub async fn with_retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = zk_client::Result<T>>,
    {
        let started = tokio::time::Instant::now();
        let mut retries = 0;
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let outcome = match self.connected_client(self.inner.connection_timeout).await {
                Some(client) => op(client).await,
                None => Err(zk_client::Error::ConnectionLoss),
            };
            let error = match outcome {
                Ok(value) => return Ok(value),
                // An old client closed under us by a session swap: the
                // operation did not happen on a live session; try again.
                Err(zk_client::Error::Closed) if !self.is_closed() => {
                    zk_client::Error::ConnectionLoss
                }
                Err(e) => e,
            };
            if self.is_closed() {
                return Err(Error::Closed);
            }
            if !error.is_retriable() {
                return Err(error.into());
            }
            let sleep =
                self.inner
                    .retry
                    .next_sleep(retries, started.elapsed(), &mut rand::thread_rng());
            let Some(sleep) = sleep else {
                return Err(error.into());
            };
            tracing::debug!(%error, retries, ?sleep, "retrying");
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.closed() => return Err(Error::Closed),
            }
            retries += 1;
        }
    }

    /// Makes `path` and its missing ancestors container nodes (Curator's
    /// `createContainers`).
    pub async fn create_containers(&self, path: &str) -> Result<()> {
        self.with_retry(|client| {
            let path = path.to_string();
            let acls = self.acls();
            async move { ensure_containers(&client, &path, &acls).await }
        })
        .await
    }

    /// Creates `path`, making missing parents containers
    /// (`creatingParentContainersIfNeeded`); returns the created path.
    pub async fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.with_retry(|client| {
            let path = path.to_string();
            let data = data.to_vec();
            let acls = self.acls();
            async move { create_with_parents(&client, &path, &data, mode, &acls).await }
        })
        .await
    }

    /// Creates `path` in a TTL mode (the server must have TTL nodes
    /// enabled), making missing parents containers; returns the created
    /// path.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        ttl: Duration,
    ) -> Result<String> {
        self.with_retry(|client| {
            let path = path.to_string();
            let data = data.to_vec();
            let acls = self.acls();
            async move { create_ttl_with_parents(&client, &path, &data, mode, ttl, &acls).await }
        })
        .await
    }

    /// Creates `parent/_c_<uuid>-<name>` (plus the sequence suffix in a
    /// sequential mode) with protection (§A4): after a retriable failure
    /// the next attempt first looks for a node with our prefix and adopts
    /// it, unless it is an ephemeral left by an earlier session, which is
    /// deleted. When the retries run out, any node with the prefix is
    /// deleted in the background. Cancel-safe: dropping the future also
    /// schedules that cleanup.
    pub async fn create_protected(
        &self,
        parent_path: &str,
        name: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String> {
        let prefix = protected_prefix(&uuid_v4(&mut rand::thread_rng()));
        let path = join(parent_path, &format!("{prefix}{name}"));
        let mut cleanup = PrefixCleanup {
            curator: self.clone(),
            parent: parent_path.to_string(),
            prefix: prefix.clone(),
            armed: true,
        };
        let attempts = Arc::new(AtomicU32::new(0));
        // The session the last create was sent on.
        let create_session = Arc::new(AtomicI64::new(0));
        let result = self
            .with_retry(|client| {
                let (this, parent_path, prefix, path, data) = (
                    self.clone(),
                    parent_path.to_string(),
                    prefix.clone(),
                    path.clone(),
                    data.to_vec(),
                );
                let (attempts, create_session) = (attempts.clone(), create_session.clone());
                async move {
                    if attempts.fetch_add(1, Ordering::SeqCst) > 0 {
                        if let Some(found) = find_by_prefix(&client, &parent_path, &prefix).await? {
                            let stale = mode.is_ephemeral()
                                && create_session.load(Ordering::SeqCst) != client.session_id();
                            if !stale {
                                return Ok(found);
                            }
                            // Created by a session that is gone: it would
                            // never be cleaned up with ours.
                            this.delete_in_background(found);
                        }
                    }
                    create_session.store(client.session_id(), Ordering::SeqCst);
                    create_with_parents(&client, &path, &data, mode, &this.acls()).await
                }
            })
            .await;
        match result {
            Ok(created) => {
                cleanup.armed = false;
                Ok(created)
            }
            // The server answered; nothing of ours can exist.
            Err(e) if !e.is_retriable() && e != Error::Closed => {
                cleanup.armed = false;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes `path` (any version); NoNode counts as done. If the retry
    /// policy gives up on a retriable error, the delete continues in the
    /// background until it succeeds (Curator's `guaranteed()`).
    pub async fn delete_guaranteed(&self, path: &str) -> Result<()> {
        let result = self
            .with_retry(|client| {
                let path = path.to_string();
                async move { delete_quietly(&client, &path).await }
            })
            .await;
        match result {
            Err(e) if e.is_retriable() => {
                self.delete_in_background(path.to_string());
                Ok(())
            }
            other => other,
        }
    }

    /// Keeps deleting `path` in the background until it is gone or the
    /// framework closes (closing ends the session, which removes our
    /// ephemerals anyway).
    pub fn delete_in_background(&self, path: String) {
        let this = self.clone();
        self.spawn_detached(async move {
            while !this.is_closed() {
                let Some(client) = this.connected_client(this.inner.connection_timeout).await
                else {
                    continue;
                };
                match delete_quietly(&client, &path).await {
                    Ok(()) => return,
                    Err(e) if e.is_retriable() || e == zk_client::Error::Closed => {
                        tokio::time::sleep(BACKGROUND_RETRY).await;
                    }
                    Err(e) => {
                        tracing::warn!(%path, %e, "guaranteed delete gave up");
                        return;
                    }
                }
            }
        });
    }

    /// Deletes, in the background, every child of `parent_path` whose name
    /// starts with `prefix` (the protected-create cleanup of §A4 step 4).
    fn delete_prefix_in_background(&self, parent_path: String, prefix: String) {
        let this = self.clone();
        self.spawn_detached(async move {
            while !this.is_closed() {
                let Some(client) = this.connected_client(this.inner.connection_timeout).await
                else {
                    continue;
                };
                match find_by_prefix(&client, &parent_path, &prefix).await {
                    Ok(None) => return,
                    Ok(Some(found)) => {
                        if let Err(e) = delete_quietly(&client, &found).await {
                            tracing::debug!(%found, %e, "protected cleanup retry");
                            tokio::time::sleep(BACKGROUND_RETRY).await;
                        }
                    }
                    Err(_) => tokio::time::sleep(BACKGROUND_RETRY).await,
                }
            }
        });
    }

    /// Closes the framework: recipes see `Closed`, the session is closed
    /// (removing its ephemerals).
    pub async fn close(&self) {
        self.inner.closed.send_replace(true);
        let client = self.client();
        let _ = client.close().await;
    }
}

/// `connect` with `/<namespace>` appended to its chroot (or as its
/// chroot).
pub fn namespaced_connect_string(connect: &str, namespace: Option<&str>) -> String {
    match namespace {
        None => connect.to_string(),
        Some(namespace) => format!("{}/{namespace}", connect.trim_end_matches('/')),
    }
}

/// A namespace is one or more non-empty segments without leading or
/// trailing slash, as Curator validates `"/" + namespace` as a path.
fn validate_namespace(namespace: &str) -> Result<()> {
    let valid = !namespace.is_empty()
        && namespace.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && !segment.chars().any(char::is_control)
        });
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid namespace {namespace:?}"
        )))
    }
}

/// Schedules a protected-prefix cleanup when dropped while armed.
struct PrefixCleanup {
    curator: Curator,
    parent: String,
    prefix: String,
    armed: bool,
}

impl Drop for PrefixCleanup {
    fn drop(&mut self) {
        if self.armed {
            self.curator.delete_prefix_in_background(
                std::mem::take(&mut self.parent),
                std::mem::take(&mut self.prefix),
            );
        }
    }
}

/// Delete with NoNode counted as success.
pub(crate) async fn delete_quietly(client: &Client, path: &str) -> zk_client::Result<()> {
    match client.delete(path, None).await {
        Ok(()) | Err(zk_client::Error::NoNode) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The full path of the child of `parent_path` starting with `prefix`; a
/// missing parent means none.
async fn find_by_prefix(
    client: &Client,
    parent_path: &str,
    prefix: &str,
) -> zk_client::Result<Option<String>> {
    match client.get_children(parent_path).await {
        Ok(children) => Ok(children
            .iter()
            .find(|c| c.starts_with(prefix))
            .map(|c| join(parent_path, c))),
        Err(zk_client::Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes `path` and every missing ancestor a container, walking up with
/// `exists` first so no access to upper ancestors is needed (§A3). Under a
/// chroot (a namespace) whose node is missing, the chroot node itself is
/// created too, as Curator creates its namespace node on first use.
pub(crate) async fn ensure_containers(
    client: &Client,
    path: &str,
    acls: &SharedAclProvider,
) -> zk_client::Result<()> {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        // The root exists, unless it is a chroot not created yet.
        let is_root = current == "/";
        if (is_root && client.chroot().is_none()) || client.exists(current).await?.is_some() {
            break;
        }
        missing.push(current.to_string());
        match parent(current) {
            Some(up) => current = up,
            None => break,
        }
    }
    for path in missing.iter().rev() {
        let acl = acls.acl_for(path);
        match client.create(path, &[], &acl, CreateMode::Container).await {
            Ok(_) | Err(zk_client::Error::NodeExists) => {}
            // Servers without containers: plain persistent nodes.
            Err(zk_client::Error::Unimplemented) => {
                match client.create(path, &[], &acl, CreateMode::Persistent).await {
                    Ok(_) | Err(zk_client::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `create` that makes missing parents containers and tries once more.
pub(crate) async fn create_with_parents(
    client: &Client,
    path: &str,
    data: &[u8],
    mode: CreateMode,
    acls: &SharedAclProvider,
) -> zk_client::Result<String> {
    let acl = acls.acl_for(path);
    match client.create(path, data, &acl, mode).await {
        Err(zk_client::Error::NoNode) => {
            if let Some(parent_path) = parent(path) {
                ensure_containers(client, parent_path, acls).await?;
            }
            client.create(path, data, &acl, mode).await
        }
        other => other,
    }
}

/// `create_ttl` that makes missing parents containers and tries once more.
pub(crate) async fn create_ttl_with_parents(
    client: &Client,
    path: &str,
    data: &[u8],
    mode: CreateMode,
    ttl: Duration,
    acls: &SharedAclProvider,
) -> zk_client::Result<String> {
    let acl = acls.acl_for(path);
    match client.create_ttl(path, data, &acl, mode, ttl).await {
        Err(zk_client::Error::NoNode) => {
            if let Some(parent_path) = parent(path) {
                ensure_containers(client, parent_path, acls).await?;
            }
            client
                .create_ttl(path, data, &acl, mode, ttl)
                .await
                .map(|(created, _)| created)
        }
        other => other.map(|(created, _)| created),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_extends_the_chroot_of_the_connect_string() {
        assert_eq!(namespaced_connect_string("h:1", None), "h:1");
        assert_eq!(namespaced_connect_string("h:1", Some("app")), "h:1/app");
        assert_eq!(
            namespaced_connect_string("h:1,h:2/root/", Some("app")),
            "h:1,h:2/root/app"
        );
    }

    #[test]
    fn the_framework_hands_its_session_settings_to_every_client() {
        let builder = Curator::builder("127.0.0.1:2181")
            .read_only(true)
            .request_timeout(Duration::from_millis(1500))
            .auth("digest", b"alice:secret");
        // The client builder keeps its fields private; its Debug form shows
        // what every (re)built client is started with.
        let client = format!("{:?}", builder.client_builder());
        assert!(client.contains("read_only: true"), "{client}");
        assert!(client.contains("request_timeout: Some(1.5s)"), "{client}");
        assert!(client.contains("\"digest\""), "{client}");
    }

    #[test]
    fn namespaces_must_be_relative_paths_without_empty_segments() {
        assert!(validate_namespace("app").is_ok());
        assert!(validate_namespace("app/sub").is_ok());
        for bad in ["", "/app", "app/", "a//b", "a/./b", "a/.."] {
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
