//! One client connection.
//!
//! The first four bytes decide what it is: a known four-letter word gets
//! its text answer and the connection closes (OPS.md §1.1); anything else
//! is the length prefix of a ConnectRequest. After the handshake the
//! reader decodes frames and forwards them to the pipeline, while a writer
//! task drains everything the pipeline queued for this connection into one
//! buffer per write call.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use zk_proto::{
    ConnectRequest, DecodeError, FrameCodec, FrameError, Jute, OpCode, Reader, Request,
    RequestFrame, RequestHeader,
};

use super::flow::{ConnFlow, ConnOutput};
use super::frames::OutFrame;
use super::stream::{BoxedRead, BoxedWrite, ClientStream};
use super::NetContext;
use crate::admin::{self, FourLetterWord};
use crate::pipeline::{ConnRegistration, Inbound, Outbound};

/// Apache's `zookeeper.nio.sessionlessCnxnTimeout`: a connection must
/// complete its handshake within this.
const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests a reader forwards in a row before it lets other tasks run, so
/// a connection with a full buffer cannot hold a worker thread.
const FRAMES_PER_TURN: usize = 64;
/// How long a four-letter-word connection may take to go away after the
/// answer (we drain its input so the close is a FIN, not a RST).
const FOUR_LETTER_LINGER: Duration = Duration::from_millis(500);

/// Serves one accepted connection until it closes or the server stops.
pub(super) async fn serve(stream: ClientStream, remote: SocketAddr, ctx: Arc<NetContext>) {
    let cancel = ctx.cancel.child_token();
    let conn_id = ctx.next_conn_id();
    let flow = Arc::new(ConnFlow::new(
        Arc::clone(&ctx.admission),
        ctx.shared.config.client_max_unsent_bytes,
        cancel.clone(),
    ));
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = run(stream, remote, conn_id, &ctx, &cancel, &flow) => {}
    }
    // Requests still unanswered leave the server-wide count.
    flow.close();
    // However the connection ended (EOF, error, closed by the server), the
    // pipeline forgets it and its watches; unknown ids are ignored there.
    let _ = ctx.pipeline.send(Inbound::Closed { conn_id });
}

async fn run(
    stream: ClientStream,
    remote: SocketAddr,
    conn_id: u64,
    ctx: &Arc<NetContext>,
    cancel: &CancellationToken,
    flow: &Arc<ConnFlow>,
) {
    let ClientStream {
        mut reader,
        writer,
        secure,
    } = stream;
    let mut buf = BytesMut::with_capacity(4096);
    match tokio::time::timeout(SESSIONLESS_TIMEOUT, read_at_least(&mut reader, &mut buf, 4)).await {
        Ok(Ok(true)) => {}
        _ => return,
    }
    if let Some(word) = FourLetterWord::from_prefix([buf[0], buf[1], buf[2], buf[3]]) {
        // stmk carries the new mask: 8 more bytes, big-endian, sent with
        // the word (Apache reads them at once and answers nothing without).
        let mask = if word == FourLetterWord::Stmk {
            let read = read_at_least(&mut reader, &mut buf, 12);
            match tokio::time::timeout(FOUR_LETTER_LINGER, read).await {
                Ok(Ok(true)) => Some(i64::from_be_bytes(buf[4..12].try_into().unwrap_or([0; 8]))),
                _ => None,
            }
        } else {
            None
        };
        four_letter(reader, writer, word, mask, remote, ctx).await;
        return;
    }

    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let stuck = Duration::from_millis(ctx.shared.config.client_stuck_timeout_ms);
    tokio::spawn(write_loop(
        writer,
        out_rx,
        cancel.clone(),
        Arc::clone(flow),
        stuck,
    ));
    let mut codec = FrameCodec::new(ctx.shared.config.jute_max_buffer);

    // The handshake: the first frame is always a ConnectRequest (a request
    // sent before it fails to parse as one and the connection closes).
    let first = tokio::time::timeout(
        SESSIONLESS_TIMEOUT,
        next_frame(&mut reader, &mut buf, &mut codec),
    )
    .await;
    let Ok(Ok(Some(frame))) = first else {
        return;
    };
    let Ok(request) = ConnectRequest::decode(&mut Reader::new(frame)) else {
        tracing::debug!(%remote, "malformed connect request; closing");
        return;
    };
    let (established_tx, established_rx) = oneshot::channel();
    let registration = ConnRegistration {
        id: conn_id,
        remote,
        out: ConnOutput::new(out_tx, Arc::clone(flow)),
        established: established_tx,
        secure,
    };
    if ctx
        .pipeline
        .send(Inbound::Connect {
            conn: registration,
            request,
        })
        .is_err()
    {
        return;
    }
    // Apache stops reading until the session is established; what the
    // client pipelined behind its ConnectRequest waits in `buf` until then.
    if matches!(established_rx.await, Ok(true)) {
        read_requests(&mut reader, &mut buf, &mut codec, conn_id, ctx, flow).await;
    }
}

/// Forwards frames to the pipeline until EOF, a framing error (oversize
/// frame: closed without a reply, as Apache's "Len error") or a frame
/// that ends the connection. Before each request it waits for the flow
/// gate (net/flow.rs): nothing is read while the server or this
/// connection is over its limits.
async fn read_requests(
    reader: &mut BoxedRead,
    buf: &mut BytesMut,
    codec: &mut FrameCodec,
    conn_id: u64,
    ctx: &NetContext,
    flow: &ConnFlow,
) {
    let max_field = ctx.shared.config.jute_max_buffer.saturating_mul(2);
    let mut in_turn = 0;
    loop {
        flow.admitted().await;
        in_turn += 1;
        if in_turn >= FRAMES_PER_TURN {
            in_turn = 0;
            tokio::task::yield_now().await;
        }
        let frame = match next_frame(reader, buf, codec).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e @ FrameError::BadLength { .. }) => {
                // Apache's "Len error": the client (or its jute.maxbuffer)
                // is wrong; one line per interval, whoever sends them.
                static OVERSIZED: crate::log_limit::RateLimit =
                    crate::log_limit::RateLimit::new(Duration::from_secs(10));
                crate::warn_limited!(
                    OVERSIZED,
                    conn_id,
                    "closing a connection that sent an oversized packet: {e} \
                     (raise jute.maxbuffer if the client is legitimate)"
                );
                return;
            }
            Err(e) => {
                tracing::debug!(conn_id, "closing connection: {e}");
                return;
            }
        };
        ctx.shared.metrics.add(
            crate::metrics::Counter::BytesReceived,
            4 + frame.len() as u64,
        );
        let Some(msg) = classify(frame, max_field, conn_id) else {
            tracing::debug!(conn_id, "unreadable request header; closing");
            return;
        };
        let last = matches!(msg, Inbound::Unimplemented { .. });
        flow.request_read();
        if ctx.pipeline.send(msg).is_err() || last {
            return;
        }
    }
}

/// Turns a request frame into the pipeline's message: a request, a
/// malformed body of a known op, or an op we do not serve. `None` when not
/// even the header is readable.
pub(crate) fn classify(frame: Bytes, max_field: usize, conn_id: u64) -> Option<Inbound> {
    let arrived = Instant::now();
    let mut r = Reader::with_max_field_len(frame, max_field);
    let header = RequestHeader::decode(&mut r).ok()?;
    let op = match OpCode::from_code(header.op) {
        Some(OpCode::Notification | OpCode::CreateSession | OpCode::Error) | None => {
            return Some(Inbound::Unimplemented {
                conn_id,
                xid: header.xid,
                arrived,
            })
        }
        Some(op) => op,
    };
    Some(match Request::decode_body(header.op, &mut r) {
        Ok(request) => Inbound::Request {
            conn_id,
            frame: RequestFrame::new(header.xid, request),
            arrived,
        },
        Err(e) => Inbound::Malformed {
            conn_id,
            xid: header.xid,
            op,
            logs_txn: e != DecodeError::NullPathInMulti,
            arrived,
        },
    })
}

/// Reads until `buf` holds `n` bytes; false on EOF first.
async fn read_at_least(
    stream: &mut BoxedRead,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<bool> {
    while buf.len() < n {
        if stream.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The next whole frame; `None` on a clean EOF between frames.
async fn next_frame(
    reader: &mut BoxedRead,
    buf: &mut BytesMut,
    codec: &mut FrameCodec,
) -> Result<Option<Bytes>, FrameError> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            return Ok(Some(frame));
        }
        if reader.read_buf(buf).await? == 0 {
            return codec.decode_eof(buf);
        }
    }
}

/// Frames gathered for one write call at most (below any `IOV_MAX`).
const MAX_FRAMES_PER_WRITE: usize = 256;

/// Writes what the pipeline queued: everything available (up to
/// [`MAX_FRAMES_PER_WRITE`] frames) goes out in one vectored write call,
/// straight from the frames' own buffers. Ends on `Close` (after
/// flushing), when the pipeline forgets the connection, on a write error,
/// when the client takes no byte for `stuck` (it does not read its
/// replies) or on cancellation; it then cancels the connection so the
/// reader stops too.
async fn write_loop(
    mut writer: BoxedWrite,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    cancel: CancellationToken,
    flow: Arc<ConnFlow>,
    stuck: Duration,
) {
    let mut batch: Vec<OutFrame> = Vec::new();
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            msg = rx.recv() => msg,
        };
        let Some(mut msg) = first else { break };
        let mut close = false;
        loop {
            match msg {
                Outbound::Frame(frame) => batch.push(frame),
                Outbound::Close => close = true,
            }
            if close || batch.len() >= MAX_FRAMES_PER_WRITE {
                break;
            }
            match rx.try_recv() {
                Ok(next) => msg = next,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let written = write_frames(&mut writer, &batch, stuck).await;
            let len = batch.iter().map(OutFrame::len).sum();
            batch.clear();
            match written {
                Ok(()) => flow.written(len),
                Err(e) => {
                    tracing::debug!("closing connection: {e}");
                    break;
                }
            }
        }
        if close {
            break;
        }
    }
    let _ = writer.shutdown().await;
    cancel.cancel();
}

/// Writes every frame in order, in as few `writev` calls as the socket
/// takes them; fails with `TimedOut` when one call makes no progress for
/// `stuck`.
async fn write_frames(
    writer: &mut BoxedWrite,
    frames: &[OutFrame],
    stuck: Duration,
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames
        .iter()
        .flat_map(OutFrame::parts)
        .filter(|p| !p.is_empty())
        .map(|p| IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = tokio::time::timeout(stuck, writer.write_vectored(rest))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took no reply bytes for the stuck timeout",
                )
            })??;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Answers a four-letter word and closes.
async fn four_letter(
    mut reader: BoxedRead,
    mut writer: BoxedWrite,
    word: FourLetterWord,
    mask: Option<i64>,
    remote: SocketAddr,
    ctx: &NetContext,
) {
    let text = if !ctx.shared.config.four_letter_whitelist.allows(word.name()) {
        admin::not_whitelisted(word)
    } else if let Some(text) = admin::answer_trace_mask(word, mask) {
        text
    } else if word == FourLetterWord::Ruok {
        // ruok only says the process is up; it never waits on the pipeline.
        // A member stopped by a durability error is not "ok" (fail_stop.rs).
        if ctx.shared.health.is_failed() {
            admin::NOT_SERVING.to_string()
        } else {
            admin::RUOK.to_string()
        }
    } else {
        let (reply, answer) = oneshot::channel();
        let asked = ctx.pipeline.send(Inbound::FourLetter {
            word,
            remote,
            reply,
        });
        match (
            asked,
            tokio::time::timeout(Duration::from_secs(5), answer).await,
        ) {
            (Ok(()), Ok(Ok(text))) => text,
            _ => "This ZooKeeper instance is not currently serving requests\n".to_string(),
        }
    };
    let _ = writer.write_all(text.as_bytes()).await;
    let _ = writer.shutdown().await;
    // Drain what the client sent after the word (e.g. nc's newline) so the
    // close does not turn into a reset that could discard our answer.
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(FOUR_LETTER_LINGER, async {
        while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;
    use zk_proto::{encode_frame, GetDataRequest};

    fn body(frame: &RequestFrame) -> Bytes {
        let mut buf = BytesMut::new();
        encode_frame(frame, &mut buf);
        buf.split_off(4).freeze()
    }

    #[test]
    fn a_known_request_is_forwarded_decoded() {
        let frame = RequestFrame::new(
            3,
            Request::GetData(GetDataRequest {
                path: "/a".into(),
                watch: true,
            }),
        );
        match classify(body(&frame), 1 << 20, 9) {
            Some(Inbound::Request {
                conn_id: 9,
                frame: got,
                ..
            }) => assert_eq!(got, frame),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_opcode_is_unimplemented() {
        let raw = Bytes::from_static(&[0, 0, 0, 5, 0, 0, 0, 99]);
        assert!(matches!(
            classify(raw, 1 << 20, 1),
            Some(Inbound::Unimplemented { xid: 5, .. })
        ));
    }

    #[test]
    fn a_truncated_body_is_malformed() {
        // getData (4) with a path length but no path bytes.
        let raw = Bytes::from_static(&[0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 9]);
        assert!(matches!(
            classify(raw, 1 << 20, 1),
            Some(Inbound::Malformed {
                xid: 5,
                op: OpCode::GetData,
                ..
            })
        ));
    }

    #[test]
    fn a_multi_with_a_null_path_is_malformed_without_a_txn() {
        // multi (14): one delete op whose path is null, then the end marker.
        let raw = Bytes::from_static(&[
            0, 0, 0, 5, 0, 0, 0, 14, // header
            0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff, // op header: delete
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // null path, version -1
            0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff, // done
        ]);
        assert!(matches!(
            classify(raw, 1 << 20, 1),
            Some(Inbound::Malformed {
                op: OpCode::Multi,
                logs_txn: false,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn frames_arrive_whole_and_in_order_across_partial_writes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // Far more than a socket buffer takes at once: writev must resume.
        let frames: Vec<OutFrame> = (0..64u8)
            .map(|i| Bytes::from(vec![i; 64 * 1024 + usize::from(i)]).into())
            .collect();
        let expected: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.parts().flat_map(|p| p.iter().copied()))
            .collect();
        let (_, writer) = client.into_split();
        let mut writer: BoxedWrite = Box::new(writer);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.map(|_| got)
        });
        let wrote = tokio::time::timeout(Duration::from_secs(10), async {
            write_frames(&mut writer, &frames, Duration::from_secs(10)).await?;
            writer.shutdown().await
        })
        .await;
        assert!(matches!(wrote, Ok(Ok(()))), "{wrote:?}");
        let got = tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            got == expected,
            "{} bytes, expected {}",
            got.len(),
            expected.len()
        );
    }

    #[test]
    fn a_short_header_closes() {
        assert!(classify(Bytes::from_static(&[0, 0, 1]), 1 << 20, 1).is_none());
    }
}
