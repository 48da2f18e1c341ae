//! The messages between connection tasks and the pipeline.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::oneshot;
use zk_proto::{ConnectRequest, OpCode, RequestFrame};

use crate::admin::FourLetterWord;
use crate::db::ConnId;
use crate::net::flow::ConnOutput;
use crate::net::frames::OutFrame;

/// What connection tasks tell the pipeline.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A handshake. The pipeline answers on `conn.out`, then resolves
    /// `conn.established` once the session is bound (false: the connection
    /// is being closed). The reader reads nothing more until then, so
    /// requests pipelined behind the ConnectRequest find their session.
    Connect {
        conn: ConnRegistration,
        request: ConnectRequest,
    },
    /// A decoded request of an established connection.
    Request {
        conn_id: ConnId,
        frame: RequestFrame,
        arrived: Instant,
    },
    /// A known opcode whose body did not parse.
    Malformed {
        conn_id: ConnId,
        xid: i32,
        op: OpCode,
        /// Whether Apache gives such a write an error txn (it does not for
        /// a multi with a null path: it fails before numbering it).
        logs_txn: bool,
        arrived: Instant,
    },
    /// An opcode the server does not serve: Unimplemented, then close.
    Unimplemented {
        conn_id: ConnId,
        xid: i32,
        arrived: Instant,
    },
    /// The connection's socket is gone.
    Closed { conn_id: ConnId },
    /// A whitelisted four-letter word that needs server state.
    FourLetter {
        word: FourLetterWord,
        remote: SocketAddr,
        reply: oneshot::Sender<String>,
    },
    /// An AdminServer command (admin_http.rs), answered with Apache's JSON.
    Admin {
        command: String,
        kwargs: Vec<(String, String)>,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// The gauge values the Prometheus endpoint exports.
    Gauges {
        reply: oneshot::Sender<Vec<(String, f64)>>,
    },
    /// Clean stop: finish durable work, snapshot, close the log.
    Shutdown { done: oneshot::Sender<()> },
    /// Crash stop: no replies, no snapshot; only waits for the log thread
    /// to stop so a restarted server never races with it.
    Kill { done: oneshot::Sender<()> },
}

/// A connection introducing itself with its handshake.
#[derive(Debug)]
pub(crate) struct ConnRegistration {
    pub id: ConnId,
    pub remote: SocketAddr,
    pub out: ConnOutput,
    pub established: oneshot::Sender<bool>,
    /// Came in on the secure (TLS) client port.
    pub secure: bool,
}

/// What the pipeline queues for a connection's writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A whole frame, length prefix included.
    Frame(OutFrame),
    /// Flush what is queued, then close the socket.
    Close,
}
