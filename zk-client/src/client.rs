//! The `Client` handle and its builder: every operation of the 3.8 client
//! API, each one a request to the connection task and a reply back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug_span, Instrument, Span};
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, CheckWatchesRequest, ClientInfo, CreateMode, CreateRequest,
    CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest,
    GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, MultiRequest, RemoveWatchesRequest,
    Request, Response, SetAclRequest, SetDataRequest, Stat, SyncRequest, WatcherType,
};

use crate::conn::{
    terminal_error, Command, Config, Driver, OnReply, Outgoing, SessionInfo, Shared,
};
use crate::connect_string::{parse_hosts, ConnectString};
use crate::create::{CreateOptions, Created};
use crate::error::{Error, Result};
use crate::host_provider::HostProvider;
use crate::ops::{ttl_millis, validate_create, Op, OpResult};
use crate::path::{validate_path, Chroot};
use crate::pending::XidGen;
use crate::state::{SessionState, StateHub, StateStream};
use crate::watch::{PersistentWatch, Sink, Watch, WatchKind, WatchRegistry};

/// Settings for a new client; see [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect_string: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    request_timeout: Option<Duration>,
    read_only: bool,
    auth: Vec<(String, Bytes)>,
    session: Option<(i64, Bytes)>,
    max_frame: usize,
}

impl ClientBuilder {
    /// The session timeout to ask for (the server clamps it). Default 30 s.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first session.
    /// Default 15 s.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Fail a call with `RequestTimeout` when its reply takes longer.
    /// Default: no limit (a lost connection still fails calls).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Accept read-only servers (state `ConnectedReadOnly`).
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Credentials sent on every connection, before any request.
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.auth
            .push((scheme.to_string(), Bytes::copy_from_slice(auth)));
        self
    }

    /// Resume an existing session instead of creating one.
    pub fn session(mut self, id: i64, password: &[u8]) -> Self {
        self.session = Some((id, Bytes::copy_from_slice(password)));
        self
    }

    /// Largest reply frame accepted (Java's `jute.maxbuffer`).
    pub fn max_frame_len(mut self, len: usize) -> Self {
        self.max_frame = len;
        self
    }

    /// Starts the connection task and waits until a session is
    /// established (or the connection timeout passes: `Timeout`).
    pub async fn connect(self) -> Result<Client> {
        let client = self.start()?;
        let mut states = client.inner.shared.state.watcher();
        let reached = tokio::time::timeout(
            self.connection_timeout,
            states.wait_for(|s| s.is_connected() || s.is_terminal()),
        )
        .await
        // Copy the state out at once: the watch guard must not live across
        // the awaits below, or this future would not be `Send`.
        .map(|waited| waited.map(|state| *state));
        let state = match reached {
            Ok(Ok(state)) => state,
            Ok(Err(_)) => client.state(),
            Err(_) => {
                let _ = client.close().await;
                return Err(Error::Timeout);
            }
        };
        if state.is_terminal() {
            return Err(terminal_error(state));
        }
        Ok(client)
    }

    /// Starts the connection task without waiting for a session, on the
    /// current tokio runtime (`NoRuntime` outside one).
    pub fn start(&self) -> Result<Client> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let parsed = ConnectString::parse(&self.connect_string)?;
        let mut rng = StdRng::from_entropy();
        let hosts = HostProvider::new(parsed.hosts, &mut rng);
        let shared = Arc::new(Shared {
            state: StateHub::new(),
            session: Mutex::new(SessionInfo::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (session_id, passwd) = self.session.clone().unwrap_or((0, Bytes::new()));
        let driver = Driver {
            config: Config {
                session_timeout: self.session_timeout,
                read_only: self.read_only,
                chroot: parsed.chroot.clone(),
                max_frame: self.max_frame,
            },
            shared: shared.clone(),
            commands: rx,
            hosts,
            rng,
            session_id,
            passwd,
            auths: self.auth.clone(),
            last_zxid: 0,
            watches: WatchRegistry::default(),
            xids: XidGen::default(),
            close_waiters: Vec::new(),
            connected_host: None,
            // As Java: a session the caller supplied was made on a
            // read/write server, so it is resumed even before we see one.
            seen_rw_server: self.session.is_some(),
            rw_server: None,
        };
        runtime.spawn(driver.run());
        Ok(Client {
            inner: Arc::new(Inner {
                commands: tx,
                shared,
                chroot: parsed.chroot,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    chroot: Chroot,
    request_timeout: Option<Duration>,
}

/// A ZooKeeper session. Cheap to clone; all clones share the session. When
/// the last clone is dropped the session is closed.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// The reply variant did not match the request: only a broken server
/// could do that.
fn unexpected(response: Response) -> Error {
    tracing::warn!(?response, "unexpected reply type");
    Error::MarshallingError
}

/// The (path, Stat) of a create that must have returned a Stat.
fn with_stat(created: Created) -> Result<(String, Stat)> {
    match created.stat {
        Some(stat) => Ok((created.path, stat)),
        None => Err(Error::MarshallingError),
    }
}

fn version(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

impl Client {
    /// A builder for `connect_string` (`host:port,host:port/chroot`).
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder {
            connect_string: connect_string.to_string(),
            session_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(15),
            request_timeout: None,
            read_only: false,
            auth: Vec::new(),
            session: None,
            max_frame: zk_proto::jute::DEFAULT_MAX_BUFFER,
        }
    }

    /// Connects with default settings.
    pub async fn connect(connect_string: &str) -> Result<Client> {
        Client::builder(connect_string).connect().await
    }

    /// The session state now.
    pub fn state(&self) -> SessionState {
        self.inner.shared.state.get()
    }

    /// Every session state change from now on, starting with the current
    /// state.
    pub fn state_stream(&self) -> StateStream {
        self.inner.shared.state.subscribe()
    }

    /// Waits until the session enters a state `pred` accepts, starting
    /// with the current state. Every change from the call on is looked at
    /// in order, so a quick Disconnected → Connected still matches a
    /// predicate for Disconnected (the feed is taken when this is called,
    /// not when the future is first polled). After a final state the feed
    /// ends and the final state is returned.
    pub fn wait_for_state<'a>(
        &self,
        mut pred: impl FnMut(&SessionState) -> bool + 'a,
    ) -> impl std::future::Future<Output = SessionState> + 'a {
        let mut states = self.inner.shared.state.subscribe();
        let shared = self.inner.shared.clone();
        async move {
            use futures::StreamExt;
            while let Some(state) = states.next().await {
                if pred(&state) {
                    return state;
                }
            }
            shared.state.get()
        }
    }

    /// The session id (0 before the first session).
    pub fn session_id(&self) -> i64 {
        self.inner.shared.session().id
    }

    /// The session password, to resume the session from another client.
    pub fn session_password(&self) -> Bytes {
        self.inner.shared.session().passwd
    }

    /// The timeout the server granted.
    pub fn session_timeout(&self) -> Duration {
        self.inner.shared.session().timeout
    }

    /// The server of the current (or last) connection.
    pub fn connected_server(&self) -> Option<std::net::SocketAddr> {
        self.inner.shared.session().server
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.as_str()
    }

    fn prefix(&self, path: &str) -> String {
        self.inner.chroot.prefix(path)
    }

    fn strip(&self, path: &str) -> String {
        self.inner.chroot.strip(path)
    }

    fn alive(&self) -> Result<()> {
        let state = self.state();
        if state.is_terminal() {
            return Err(terminal_error(state));
        }
        Ok(())
    }

    /// Sends `request` and waits for its reply.
    async fn call(&self, request: Request, on_reply: Option<OnReply>) -> Result<Response> {
        let span =
            debug_span!("zk_request", op = ?request.op_code(), path = request.path().unwrap_or(""));
        async move {
            self.alive()?;
            let (tx, rx) = oneshot::channel();
            let outgoing = Outgoing {
                request,
                on_reply,
                reply: tx,
                span: Span::current(),
            };
            if self
                .inner
                .commands
                .send(Command::Request(outgoing))
                .is_err()
            {
                return Err(terminal_error(self.state()));
            }
            let reply = match self.inner.request_timeout {
                Some(limit) => tokio::time::timeout(limit, rx)
                    .await
                    .map_err(|_| Error::RequestTimeout)?,
                None => rx.await,
            };
            reply.unwrap_or_else(|_| Err(terminal_error(self.state())))
        }
        .instrument(span)
        .await
    }

    /// Creates a node as `options` say (mode, ACL, TTL, Stat, null data):
    /// opcode createTTL with a TTL, createContainer for containers, create2
    /// when the Stat is asked for, create otherwise. The other `create*`
    /// calls are shorthands for this one.
    pub async fn create_with(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<Created> {
        validate_create(path, &options.acl, options.mode, options.ttl)?;
        let data = (!options.null_data).then(|| Bytes::copy_from_slice(data));
        let request = match options.ttl {
            Some(ttl) => Request::CreateTtl(CreateTtlRequest {
                path: self.prefix(path),
                data,
                acl: options.acl.clone(),
                flags: options.mode.code(),
                ttl: ttl_millis(ttl),
            }),
            None => {
                let body = CreateRequest {
                    path: self.prefix(path),
                    data,
                    acl: options.acl.clone(),
                    flags: options.mode.code(),
                };
                if options.mode.is_container() {
                    Request::CreateContainer(body)
                } else if options.stat {
                    Request::Create2(body)
                } else {
                    Request::Create(body)
                }
            }
        };
        match self.call(request, None).await? {
            Response::Create(r) => Ok(Created {
                path: self.strip(&r.path),
                stat: None,
            }),
            Response::Create2(r) => Ok(Created {
                path: self.strip(&r.path),
                stat: Some(r.stat),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a node and returns its path (with the sequence suffix).
    /// Uses opcode create, or createContainer for containers; TTL modes
    /// need [`create_ttl`](Self::create_ttl).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        let options = CreateOptions::new(mode).acl(acl);
        Ok(self.create_with(path, data, &options).await?.path)
    }

    /// As [`create`](Self::create), with null data (wire length -1, not
    /// the empty buffer): [`get_data_opt`](Self::get_data_opt) then reads
    /// `None`, as Java's `create(path, null, ...)`.
    pub async fn create_with_null_data(
        &self,
        path: &str,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        let options = CreateOptions::new(mode).acl(acl).null_data();
        Ok(self.create_with(path, &[], &options).await?.path)
    }

    /// Creates a node and returns its path and Stat (opcode create2, or
    /// createContainer for containers).
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        let options = CreateOptions::new(mode).acl(acl).with_stat();
        with_stat(self.create_with(path, data, &options).await?)
    }

    /// Creates a node with a TTL (mode `PersistentWithTtl` or
    /// `PersistentSequentialWithTtl`; the server needs extended types).
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Duration,
    ) -> Result<(String, Stat)> {
        let options = CreateOptions::new(mode).acl(acl).ttl(ttl).with_stat();
        with_stat(self.create_with(path, data, &options).await?)
    }

    /// Deletes a node; `version` `None` matches any. As the Java client,
    /// `"/"` is sent as `/` even under a chroot (and so always fails).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        validate_path(path, false)?;
        let server_path = if path == "/" {
            path.to_string()
        } else {
            self.prefix(path)
        };
        let request = Request::Delete(DeleteRequest {
            path: server_path,
            version: self::version(version),
        });
        self.call(request, None).await.map(drop)
    }

    async fn exists_inner(&self, path: &str, watch: Option<Sink>) -> Result<Option<Stat>> {
        validate_path(path, false)?;
        let on_reply = watch.map(|sink| OnReply::Register {
            kind: WatchKind::Data,
            exists: true,
            path: path.to_string(),
            sink,
        });
        let request = Request::Exists(ExistsRequest {
            path: self.prefix(path),
            watch: on_reply.is_some(),
        });
        match self.call(request, on_reply).await {
            Ok(Response::Stat(stat)) => Ok(Some(stat)),
            Ok(other) => Err(unexpected(other)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's Stat, or `None` when it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_inner(path, None).await
    }

    /// As [`exists`](Self::exists), and watches the node: the watch fires
    /// on creation (if missing), or on data change / deletion.
    pub async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watch)> {
        let (tx, watch) = Watch::new();
        let stat = self.exists_inner(path, Some(Sink::OneShot(tx))).await?;
        Ok((stat, watch))
    }

    async fn get_data_inner(
        &self,
        path: &str,
        watch: Option<Sink>,
    ) -> Result<(Option<Bytes>, Stat)> {
        validate_path(path, false)?;
        let on_reply = watch.map(|sink| OnReply::Register {
            kind: WatchKind::Data,
            exists: false,
            path: path.to_string(),
            sink,
        });
        let request = Request::GetData(GetDataRequest {
            path: self.prefix(path),
            watch: on_reply.is_some(),
        });
        match self.call(request, on_reply).await? {
            Response::GetData(r) => Ok((r.data, r.stat)),
            other => Err(unexpected(other)),
        }
    }

    /// The node's data (null data reads as empty) and Stat. Use
    /// [`get_data_opt`](Self::get_data_opt) to tell null from empty.
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat)> {
        let (data, stat) = self.get_data_inner(path, None).await?;
        Ok((data.unwrap_or_default(), stat))
    }

    /// As [`get_data`](Self::get_data), and watches the node for a data
    /// change or deletion.
    pub async fn get_data_and_watch(&self, path: &str) -> Result<(Bytes, Stat, Watch)> {
        let (data, stat, watch) = self.get_data_opt_and_watch(path).await?;
        Ok((data.unwrap_or_default(), stat, watch))
    }

    /// The node's data and Stat, keeping null data (`None`) apart from
    /// empty data (`Some` of no bytes), as the wire does.
    pub async fn get_data_opt(&self, path: &str) -> Result<(Option<Bytes>, Stat)> {
        self.get_data_inner(path, None).await
    }

    /// As [`get_data_opt`](Self::get_data_opt), and watches the node for a
    /// data change or deletion.
    pub async fn get_data_opt_and_watch(&self, path: &str) -> Result<(Option<Bytes>, Stat, Watch)> {
        let (tx, watch) = Watch::new();
        let (data, stat) = self.get_data_inner(path, Some(Sink::OneShot(tx))).await?;
        Ok((data, stat, watch))
    }

    /// Sets the node's data; `version` `None` matches any.
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.set_data_inner(path, Some(Bytes::copy_from_slice(data)), version)
            .await
    }

    /// As [`set_data`](Self::set_data), making the data null (wire length
    /// -1), as Java's `setData(path, null, version)`.
    pub async fn set_null_data(&self, path: &str, version: Option<i32>) -> Result<Stat> {
        self.set_data_inner(path, None, version).await
    }

    async fn set_data_inner(
        &self,
        path: &str,
        data: Option<Bytes>,
        version: Option<i32>,
    ) -> Result<Stat> {
        validate_path(path, false)?;
        let request = Request::SetData(SetDataRequest {
            path: self.prefix(path),
            data,
            version: self::version(version),
        });
        match self.call(request, None).await? {
            Response::Stat(stat) => Ok(stat),
            other => Err(unexpected(other)),
        }
    }

    async fn children_inner(
        &self,
        path: &str,
        with_stat: bool,
        watch: Option<Sink>,
    ) -> Result<(Vec<String>, Option<Stat>)> {
        validate_path(path, false)?;
        let on_reply = watch.map(|sink| OnReply::Register {
            kind: WatchKind::Child,
            exists: false,
            path: path.to_string(),
            sink,
        });
        let body = GetChildrenRequest {
            path: self.prefix(path),
            watch: on_reply.is_some(),
        };
        let request = if with_stat {
            Request::GetChildren2(body)
        } else {
            Request::GetChildren(body)
        };
        match self.call(request, on_reply).await? {
            Response::GetChildren(r) => Ok((r.children, None)),
            Response::GetChildren2(r) => Ok((r.children, Some(r.stat))),
            other => Err(unexpected(other)),
        }
    }

    /// The names of the node's children (opcode getChildren).
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        Ok(self.children_inner(path, false, None).await?.0)
    }

    /// As [`get_children`](Self::get_children), and watches the child
    /// list (and the node's deletion).
    pub async fn get_children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watch)> {
        let (tx, watch) = Watch::new();
        let (children, _) = self
            .children_inner(path, false, Some(Sink::OneShot(tx)))
            .await?;
        Ok((children, watch))
    }

    /// The children and the node's Stat (opcode getChildren2).
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        let (children, stat) = self.children_inner(path, true, None).await?;
        stat.map(|s| (children, s)).ok_or(Error::MarshallingError)
    }

    /// As [`get_children2`](Self::get_children2), with a child watch.
    pub async fn get_children2_and_watch(&self, path: &str) -> Result<(Vec<String>, Stat, Watch)> {
        let (tx, watch) = Watch::new();
        let (children, stat) = self
            .children_inner(path, true, Some(Sink::OneShot(tx)))
            .await?;
        let stat = stat.ok_or(Error::MarshallingError)?;
        Ok((children, stat, watch))
    }

    /// Reads a node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        validate_path(path, false)?;
        let request = Request::GetAcl(GetAclRequest {
            path: self.prefix(path),
        });
        match self.call(request, None).await? {
            Response::GetAcl(r) => Ok((r.acl, r.stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the node's ACL; `version` (the `aversion`) `None` matches
    /// any.
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        validate_path(path, false)?;
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let request = Request::SetAcl(SetAclRequest {
            path: self.prefix(path),
            acl: acl.to_vec(),
            version: self::version(version),
        });
        match self.call(request, None).await? {
            Response::Stat(stat) => Ok(stat),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until the connected server has caught up with the leader;
    /// returns the path.
    pub async fn sync(&self, path: &str) -> Result<String> {
        validate_path(path, false)?;
        let request = Request::Sync(SyncRequest {
            path: Some(self.prefix(path)),
        });
        match self.call(request, None).await? {
            Response::Sync(r) => Ok(self.strip(r.path.as_deref().unwrap_or_default())),
            other => Err(unexpected(other)),
        }
    }

    async fn multi_inner(&self, ops: &[Op], read: bool) -> Result<Vec<OpResult>> {
        if ops.iter().any(|op| op.is_read() != read) {
            return Err(Error::bad_arguments(if read {
                "multi_read takes only get_data and get_children ops"
            } else {
                "multi takes only write and check ops"
            }));
        }
        if ops.is_empty() {
            // As the Java client: nothing to send.
            return Ok(Vec::new());
        }
        let wire = ops
            .iter()
            .map(|op| op.to_wire(&self.inner.chroot))
            .collect::<Result<Vec<_>>>()?;
        let body = MultiRequest { ops: wire };
        let request = if read {
            Request::MultiRead(body)
        } else {
            Request::Multi(body)
        };
        match self.call(request, None).await? {
            Response::Multi(r) => Ok(r
                .results
                .into_iter()
                .map(|res| OpResult::from_wire(res, &self.inner.chroot))
                .collect()),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `ops` as one transaction: all are applied or none. A failed
    /// transaction is the error of its first failing op (as Java's
    /// `multi`); use [`multi_results`](Self::multi_results) to see every
    /// op's outcome.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let results = self.multi_inner(ops, false).await?;
        match results.iter().find_map(OpResult::error) {
            Some(e) => Err(e.clone()),
            None => Ok(results),
        }
    }

    /// Runs `ops` as one transaction and returns every op's outcome, also
    /// when it failed (then the failing op holds its error, the ones before
    /// are [`OpResult::NotApplied`], the ones after `RuntimeInconsistency`).
    pub async fn multi_results(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        self.multi_inner(ops, false).await
    }

    /// Runs independent reads in one round trip; each has its own outcome.
    pub async fn multi_read(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        self.multi_inner(ops, true).await
    }

    /// Adds a persistent (or persistent-recursive) watch on `path`.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatch> {
        validate_path(path, false)?;
        let (tx, stream) = PersistentWatch::new();
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        let on_reply = OnReply::Register {
            kind,
            exists: false,
            path: path.to_string(),
            sink: Sink::Stream(tx),
        };
        let request = Request::AddWatch(AddWatchRequest {
            path: self.prefix(path),
            mode: mode.code(),
        });
        self.call(request, Some(on_reply)).await?;
        Ok(stream)
    }

    /// Removes every watch of `watcher_type` this session has on `path`
    /// (opcode removeWatches); each removed watcher gets a `*WatchRemoved`
    /// event. `NoWatcher` when there was none.
    pub async fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        validate_path(path, false)?;
        let request = Request::RemoveWatches(RemoveWatchesRequest {
            path: self.prefix(path),
            watcher_type: watcher_type.code(),
        });
        let on_reply = OnReply::Remove {
            path: path.to_string(),
            watcher_type,
        };
        self.call(request, Some(on_reply)).await.map(drop)
    }

    /// Asks the server whether this session has a watch of `watcher_type`
    /// on `path` (opcode checkWatches); `NoWatcher` when not.
    pub async fn check_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        validate_path(path, false)?;
        let request = Request::CheckWatches(CheckWatchesRequest {
            path: self.prefix(path),
            watcher_type: watcher_type.code(),
        });
        self.call(request, None).await.map(drop)
    }

    /// The session's ephemeral nodes whose paths start with `prefix`.
    /// Unlike Java, the chroot is applied to the prefix and stripped from
    /// the results.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        validate_path(prefix, false)?;
        let request = Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: self.prefix(prefix),
        });
        match self.call(request, None).await? {
            Response::GetEphemerals(r) => Ok(r.ephemerals.iter().map(|p| self.strip(p)).collect()),
            other => Err(unexpected(other)),
        }
    }

    /// The number of nodes below `path` (all descendants).
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        validate_path(path, false)?;
        let request = Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: self.prefix(path),
        });
        match self.call(request, None).await? {
            Response::GetAllChildrenNumber(r) => Ok(r.total_number),
            other => Err(unexpected(other)),
        }
    }

    /// The identities this connection is authenticated as.
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        match self.call(Request::WhoAmI, None).await? {
            Response::WhoAmI(r) => Ok(r.client_info),
            other => Err(unexpected(other)),
        }
    }

    /// Adds credentials (e.g. `digest`, `user:password`) to this session's
    /// connection; they are replayed on every reconnect. A refusal ends the
    /// client in `AuthFailed`.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.alive()?;
        let (tx, rx) = oneshot::channel();
        let command = Command::AddAuth {
            scheme: scheme.to_string(),
            auth: Bytes::copy_from_slice(auth),
            reply: tx,
        };
        if self.inner.commands.send(command).is_err() {
            return Err(terminal_error(self.state()));
        }
        rx.await
            .unwrap_or_else(|_| Err(terminal_error(self.state())))
    }

    /// Replaces the server list (e.g. after a reconfig). Returns true when
    /// the client dropped its connection to rebalance onto another server.
    pub async fn update_server_list(&self, hosts: &str) -> Result<bool> {
        self.alive()?;
        let hosts = parse_hosts(hosts.split('/').next().unwrap_or(""))?;
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::UpdateServerList { hosts, reply: tx })
            .is_err()
        {
            return Err(terminal_error(self.state()));
        }
        rx.await.map_err(|_| terminal_error(self.state()))
    }

    /// Closes the session (closeSession, waiting briefly for the server)
    /// and ends the client: watchers and the state feed see Closed, later
    /// calls fail with `Closed`. Closing a finished client does nothing.
    pub async fn close(&self) -> Result<()> {
        if self.state().is_terminal() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Close { reply: tx })
            .is_ok()
        {
            let _ = rx.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn connecting_can_run_on_a_spawned_task() {
        // Compile-time property: tokio::spawn needs a Send future.
        assert_send(Client::builder("127.0.0.1:1").connect());
        assert_send(Client::connect("127.0.0.1:1"));
    }

    #[test]
    fn waiting_for_a_state_can_run_on_a_spawned_task() {
        fn check(client: &Client) {
            assert_send(client.wait_for_state(|s| s.is_connected()));
        }
        let _ = check;
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error_not_a_panic() {
        assert_eq!(
            Client::builder("127.0.0.1:1").start().map(drop),
            Err(Error::NoRuntime)
        );
    }
}
