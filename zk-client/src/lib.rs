//! An async ZooKeeper client for Apache ZooKeeper 3.5 to 3.9 (and our own
//! server).
//!
//! A [`Client`] is a cheap handle on one session. Every call is a request
//! to a connection task that owns the socket (Java's `ClientCnxn`): it
//! matches replies to requests, pings, reconnects within the session
//! timeout, replays credentials and re-registers watches.
//!
//! Watches the Rust way: a read that sets a one-shot watch returns its
//! result and a [`Watch`] future; persistent watches are
//! [`PersistentWatch`] streams, and session states a [`StateStream`].
//! Events reach watchers in server order, and always before the reply to
//! any later request.
//!
//! ```no_run
//! # async fn demo() -> zk_client::Result<()> {
//! use zk_client::{Acl, Client, CreateMode};
//! let zk = Client::connect("127.0.0.1:2181/app").await?;
//! zk.create("/config", b"v1", &Acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (data, _stat, watch) = zk.get_data_and_watch("/config").await?;
//! println!("{data:?}");
//! let event = watch.await; // NodeDataChanged, NodeDeleted, or a session end
//! println!("{event:?}");
//! zk.close().await
//! # }
//! ```

#![warn(missing_docs)]

pub mod acl;
mod client;
mod conn;
pub mod connect_string;
mod create;
mod error;
pub mod host_provider;
mod ops;
pub mod path;
pub mod pending;
pub mod read_only;
mod state;
mod watch;

pub use acl::{CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE};
pub use client::{Client, ClientBuilder};
pub use connect_string::{ConnectString, HostAddr};
pub use create::{CreateOptions, Created};
pub use error::{Error, Result};
pub use ops::{Op, OpResult};
pub use state::{SessionState, StateStream};
pub use watch::{PersistentWatch, Watch, WatchedEvent};
pub use zk_proto::{
    Acl, AddWatchMode, ClientInfo, CreateMode, EventType, Id, KeeperState, Perms, Stat, WatcherType,
};
