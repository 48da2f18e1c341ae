//! Golden tests: frames captured between real clients (kazoo, zkCli.sh, the
//! Java API, cli_mt) and Apache ZooKeeper 3.8 (see tools/capture/). Every
//! frame must decode to a typed value and re-encode to the very same bytes,
//! and the values must be the ones each scenario's comments describe.

use std::collections::HashMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use zk_proto::*;

/// Which way a frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

/// One captured frame, decoded.
#[derive(Debug, Clone, PartialEq)]
enum Decoded {
    Connect(ConnectRequest),
    Connected(ConnectResponse),
    Request(RequestFrame),
    Reply { op: OpCode, frame: ReplyFrame },
    Notification { zxid: i64, event: WatcherEvent },
}

/// A fixture: its TCP connections, each a list of decoded frames.
struct Fixture {
    name: String,
    connections: Vec<Vec<Decoded>>,
}

impl Fixture {
    fn all(&self) -> impl Iterator<Item = &Decoded> {
        self.connections.iter().flatten()
    }

    fn requests(&self) -> impl Iterator<Item = &Request> {
        self.all().filter_map(|d| match d {
            Decoded::Request(f) => Some(&f.request),
            _ => None,
        })
    }

    fn replies(&self, op: OpCode) -> Vec<&ReplyFrame> {
        self.all()
            .filter_map(|d| match d {
                Decoded::Reply { op: o, frame } if *o == op => Some(frame),
                _ => None,
            })
            .collect()
    }

    fn error_codes(&self) -> Vec<i32> {
        self.all()
            .filter_map(|d| match d {
                Decoded::Reply { frame, .. } if frame.header.err != 0 => Some(frame.header.err),
                _ => None,
            })
            .collect()
    }

    fn notifications(&self) -> Vec<(EventType, String)> {
        self.all()
            .filter_map(|d| match d {
                Decoded::Notification { event, .. } => {
                    Some((event.event_type().unwrap(), event.path.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn op_codes(&self) -> Vec<OpCode> {
        self.requests().map(Request::op_code).collect()
    }
}

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// Parses the text format (`C <hex>`, `S <hex>`, `= reconnect`, `#`).
fn parse(text: &str) -> Vec<Vec<(Dir, Bytes)>> {
    let mut connections = vec![Vec::new()];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('=') {
            connections.push(Vec::new());
            continue;
        }
        let (dir, hex) = match line.split_once(' ') {
            Some(("C", hex)) => (Dir::Client, hex),
            Some(("S", hex)) => (Dir::Server, hex),
            _ => panic!("line {}: not a frame: {line}", n + 1),
        };
        let bytes = hex::decode(hex).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        connections
            .last_mut()
            .unwrap()
            .push((dir, Bytes::from(bytes)));
    }
    connections.retain(|c| !c.is_empty());
    connections
}

/// Splits a captured frame with [`FrameCodec`], checking the prefix.
fn body_of(frame: &Bytes) -> Bytes {
    let mut buf = BytesMut::from(&frame[..]);
    let body = FrameCodec::default()
        .decode(&mut buf)
        .expect("valid frame")
        .expect("whole frame");
    assert!(buf.is_empty(), "bytes after the frame");
    body
}

fn encode<T: Jute>(value: &T) -> Bytes {
    let mut buf = BytesMut::new();
    encode_frame(value, &mut buf);
    buf.freeze()
}

/// Decodes one connection's frames, pairing replies with requests by xid,
/// and checks that each re-encodes to the captured bytes.
fn decode_connection(name: &str, frames: &[(Dir, Bytes)]) -> Vec<Decoded> {
    let mut pending: HashMap<i32, OpCode> = HashMap::new();
    let mut saw_connect = false;
    let mut saw_connected = false;
    let mut out = Vec::new();
    for (i, (dir, frame)) in frames.iter().enumerate() {
        let body = body_of(frame);
        let context = format!("{name} frame {i} ({dir:?})");
        let (decoded, reencoded) = match dir {
            Dir::Client if !saw_connect => {
                saw_connect = true;
                let req = ConnectRequest::from_bytes(body).expect(&context);
                (Decoded::Connect(req.clone()), encode(&req))
            }
            Dir::Server if !saw_connected => {
                saw_connected = true;
                let resp = ConnectResponse::from_bytes(body).expect(&context);
                (Decoded::Connected(resp.clone()), encode(&resp))
            }
            Dir::Client => {
                let req = RequestFrame::decode_frame(body).expect(&context);
                pending.insert(req.xid, req.request.op_code());
                (Decoded::Request(req.clone()), encode(&req))
            }
            Dir::Server => match ServerMessage::decode_frame(body.clone()).expect(&context) {
                ServerMessage::Notification { zxid, event } => {
                    let mut buf = BytesMut::new();
                    write_frame(&mut buf, |b| response::encode_notification(zxid, &event, b));
                    (Decoded::Notification { zxid, event }, buf.freeze())
                }
                ServerMessage::Reply { header, .. } => {
                    let op = *pending.get(&header.xid).unwrap_or_else(|| {
                        panic!("{context}: reply to unknown xid {}", header.xid)
                    });
                    let reply = ReplyFrame::decode_reply(body, op).expect(&context);
                    let mut buf = BytesMut::new();
                    write_frame(&mut buf, |b| reply.encode(b));
                    (Decoded::Reply { op, frame: reply }, buf.freeze())
                }
            },
        };
        assert_eq!(
            hex::encode(&reencoded),
            hex::encode(frame),
            "{context} does not re-encode byte for byte: {decoded:?}"
        );
        out.push(decoded);
    }
    out
}

fn load(name: &str) -> Fixture {
    let path = fixtures_dir().join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    Fixture {
        name: name.to_string(),
        connections: parse(&text)
            .iter()
            .map(|frames| decode_connection(name, frames))
            .collect(),
    }
}

#[test]
fn every_fixture_frame_decodes_and_reencodes_byte_for_byte() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".txt").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10, "fixtures missing: {names:?}");
    for name in names {
        let fixture = load(&name);
        assert!(fixture.all().count() > 2, "{} is empty", fixture.name);
    }
}

#[test]
fn kazoo_connect_creates_a_session_and_closes_it() {
    let f = load("kazoo_connect");
    let Decoded::Connect(req) = &f.connections[0][0] else {
        panic!("first frame is not a connect request")
    };
    assert_eq!(
        (req.protocol_version, req.session_id, req.timeout),
        (0, 0, 10_000)
    );
    assert_eq!(req.passwd.len(), 16);
    let Decoded::Connected(resp) = &f.connections[0][1] else {
        panic!("second frame is not a connect response")
    };
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.passwd.len(), 16);
    assert!(resp.timeout > 0);
    assert_eq!(f.op_codes().last(), Some(&OpCode::CloseSession));
}

#[test]
fn connect_response_password_is_java_random_of_the_session_id() {
    // The server derives it from the id (WIRE.md §4.4); a reconnect sends
    // the same id and password back.
    let f = load("zkcli_watches");
    let Decoded::Connected(first) = &f.connections[0][1] else {
        panic!()
    };
    let Decoded::Connect(again) = &f.connections[1][0] else {
        panic!()
    };
    assert_eq!(again.session_id, first.session_id);
    assert_eq!(again.passwd, first.passwd);
    assert!(again.last_zxid_seen > 0);
}

#[test]
fn create_modes_use_the_flags_and_opcodes_of_each_mode() {
    let f = load("zkcli_create_modes");
    let mut seen: Vec<(OpCode, i32)> = f
        .requests()
        .filter_map(|r| match r {
            // zkCli 3.8 uses create (1) for the plain modes; the Java API's
            // create-with-Stat uses create2 (15): either is the right opcode.
            Request::Create(c) | Request::Create2(c) => Some((OpCode::Create, c.flags)),
            Request::CreateContainer(c) => Some((OpCode::CreateContainer, c.flags)),
            Request::CreateTtl(c) => {
                assert_eq!(c.ttl, 10_000);
                Some((OpCode::CreateTtl, c.flags))
            }
            _ => None,
        })
        .collect();
    seen.sort_by_key(|&(op, flags)| (op.code(), flags));
    seen.dedup();
    for expected in [
        (OpCode::Create, 0),
        (OpCode::Create, 1),
        (OpCode::Create, 2),
        (OpCode::Create, 3),
        (OpCode::CreateContainer, 4),
        (OpCode::CreateTtl, 5),
        (OpCode::CreateTtl, 6),
    ] {
        assert!(seen.contains(&expected), "missing {expected:?} in {seen:?}");
    }
    let codes = f.error_codes();
    for code in [
        ErrorCode::NodeExists,
        ErrorCode::NoNode,
        ErrorCode::NoChildrenForEphemerals,
    ] {
        assert!(
            codes.contains(&code.code()),
            "missing {code:?} in {codes:?}"
        );
    }
}

#[test]
fn sequential_creates_get_ten_digit_suffixes() {
    let f = load("kazoo_create_modes");
    let paths: Vec<&str> = f
        .replies(OpCode::Create)
        .into_iter()
        .filter_map(|r| match &r.response {
            Response::Create(c) => Some(c.path.as_str()),
            _ => None,
        })
        .collect();
    let sequential: Vec<&&str> = paths
        .iter()
        .filter(|p| {
            let tail = &p[p.len().saturating_sub(10)..];
            tail.len() == 10 && tail.bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    assert!(sequential.len() >= 2, "no sequential paths in {paths:?}");
}

#[test]
fn null_data_stays_null_and_empty_stays_empty() {
    let f = load("kazoo_create_modes");
    let datas: Vec<Option<Bytes>> = f
        .replies(OpCode::GetData)
        .into_iter()
        .filter_map(|r| match &r.response {
            Response::GetData(g) => Some(g.data.clone()),
            _ => None,
        })
        .collect();
    assert!(datas.contains(&None), "no null data read back: {datas:?}");
    assert!(
        datas.contains(&Some(Bytes::new())),
        "no empty data read back: {datas:?}"
    );
}

#[test]
fn error_replies_carry_the_keeper_exception_codes() {
    let f = load("kazoo_get_set_exists_delete");
    let codes = f.error_codes();
    for code in [
        ErrorCode::BadVersion,
        ErrorCode::NoNode,
        ErrorCode::NodeExists,
    ] {
        assert!(
            codes.contains(&code.code()),
            "missing {code:?} in {codes:?}"
        );
    }
}

#[test]
fn watches_fire_data_created_children_and_deleted_events() {
    let f = load("kazoo_get_set_exists_delete");
    let kinds: Vec<EventType> = f.notifications().into_iter().map(|(t, _)| t).collect();
    for kind in [
        EventType::NodeDataChanged,
        EventType::NodeCreated,
        EventType::NodeChildrenChanged,
        EventType::NodeDeleted,
    ] {
        assert!(kinds.contains(&kind), "missing {kind:?} in {kinds:?}");
    }
    for d in f.all() {
        if let Decoded::Notification { event, .. } = d {
            assert_eq!(event.keeper_state().unwrap(), KeeperState::SyncConnected);
        }
    }
}

#[test]
fn get_children2_returns_names_and_the_parent_stat() {
    let f = load("kazoo_get_set_exists_delete");
    let replies = f.replies(OpCode::GetChildren2);
    let Some(Response::GetChildren2(r)) = replies.first().map(|r| &r.response) else {
        panic!("no getChildren2 reply")
    };
    assert_eq!(r.stat.num_children as usize, r.children.len());
    assert!(r.children.iter().all(|c| !c.starts_with('/')));
}

#[test]
fn failed_multi_reports_per_op_errors_with_header_ok() {
    let f = load("kazoo_multi");
    let multis = f.replies(OpCode::Multi);
    assert!(multis.len() >= 3, "expected three multi replies");
    let Response::Multi(ok) = &multis[0].response else {
        panic!()
    };
    assert!(ok.first_error().is_none());
    assert!(matches!(ok.results[0], MultiResult::Create(_)));
    let Response::Multi(failed) = &multis[1].response else {
        panic!()
    };
    assert_eq!(multis[1].header.err, 0);
    let codes: Vec<i32> = failed
        .results
        .iter()
        .filter_map(MultiResult::error)
        .collect();
    assert_eq!(codes, vec![0, -110, -2]);
}

#[test]
fn multi_requests_hold_typed_sub_ops() {
    let f = load("kazoo_multi");
    let ops: Vec<OpCode> = f
        .requests()
        .filter_map(|r| match r {
            Request::Multi(m) => Some(m.ops.iter().map(MultiOp::op_code).collect::<Vec<_>>()),
            _ => None,
        })
        .next()
        .expect("a multi request");
    assert_eq!(
        ops,
        vec![
            OpCode::Create,
            OpCode::SetData,
            OpCode::Check,
            OpCode::Delete,
            OpCode::Create
        ]
    );
}

#[test]
fn add_watch_then_set_watches2_after_reconnect() {
    let f = load("zkcli_watches");
    let modes: Vec<i32> = f
        .requests()
        .filter_map(|r| match r {
            Request::AddWatch(a) => Some(a.mode),
            _ => None,
        })
        .collect();
    assert_eq!(modes, vec![0, 1]);
    for reply in f.replies(OpCode::AddWatch) {
        assert_eq!(reply.response, Response::AddWatch(ErrorResponse { err: 0 }));
    }
    let set_watches = f
        .requests()
        .find_map(|r| match r {
            Request::SetWatches2(s) => Some(s.clone()),
            _ => None,
        })
        .expect("setWatches2 after reconnect");
    assert_eq!(set_watches.data_watches, vec!["/g".to_string()]);
    assert_eq!(set_watches.persistent_watches, vec!["/p".to_string()]);
    assert_eq!(
        set_watches.persistent_recursive_watches,
        vec!["/r".to_string()]
    );
    let after_reconnect: Vec<(EventType, String)> = f.connections[1]
        .iter()
        .filter_map(|d| match d {
            Decoded::Notification { event, .. } => {
                Some((event.event_type().unwrap(), event.path.clone()))
            }
            _ => None,
        })
        .collect();
    // The one-shot data watch on /g fires for the change made while the
    // client was away; persistent watches are only re-registered, so the
    // change to /p is not reported (SEMANTICS.md §4.5). The recursive
    // watch on /r then fires for the set of /r/a after the reconnect.
    assert!(after_reconnect.contains(&(EventType::NodeDataChanged, "/g".into())));
    assert!(!after_reconnect.contains(&(EventType::NodeDataChanged, "/p".into())));
    assert!(after_reconnect.contains(&(EventType::NodeDataChanged, "/r/a".into())));
}

#[test]
fn c_client_set_watches_uses_xid_minus_eight() {
    let f = load("cli_mt_session");
    let frame = f.connections[1]
        .iter()
        .find_map(|d| match d {
            Decoded::Request(r) if r.request.op_code() == OpCode::SetWatches => Some(r.clone()),
            _ => None,
        })
        .expect("setWatches after reconnect");
    assert_eq!(frame.xid, xid::SET_WATCHES);
    let echoed = f.connections[1].iter().any(
        |d| matches!(d, Decoded::Reply { op: OpCode::SetWatches, frame } if frame.header.xid == -8),
    );
    assert!(echoed, "server did not echo xid -8");
}

#[test]
fn pings_use_xid_minus_two_both_ways() {
    for name in ["kazoo_ping", "zkcli_ping"] {
        let f = load(name);
        let pings: Vec<&RequestFrame> = f
            .all()
            .filter_map(|d| match d {
                Decoded::Request(r) if r.request == Request::Ping => Some(r),
                _ => None,
            })
            .collect();
        assert!(!pings.is_empty(), "{name}: no pings");
        assert!(pings.iter().all(|p| p.xid == xid::PING));
        let replies = f.replies(OpCode::Ping);
        assert!(replies
            .iter()
            .all(|r| r.header.xid == xid::PING && r.header.err == 0));
        assert!(!replies.is_empty(), "{name}: no ping replies");
    }
}

#[test]
fn digest_auth_succeeds_and_unknown_scheme_fails() {
    let f = load("kazoo_auth");
    // kazoo replays its credentials on every reconnect, so look at each
    // auth request with the reply that answered it.
    let mut outcomes = Vec::new();
    for conn in &f.connections {
        let scheme = conn.iter().rev().find_map(|d| match d {
            Decoded::Request(RequestFrame {
                request: Request::Auth(a),
                ..
            }) => Some(a.scheme.clone()),
            _ => None,
        });
        let err = conn.iter().rev().find_map(|d| match d {
            Decoded::Reply {
                op: OpCode::Auth,
                frame,
            } => Some(frame.header.err),
            _ => None,
        });
        if let (Some(scheme), Some(err)) = (scheme, err) {
            outcomes.push((scheme, err));
        }
    }
    assert!(
        outcomes.contains(&("digest".to_string(), 0)),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("nosuchscheme".to_string(), ErrorCode::AuthFailed.code())),
        "{outcomes:?}"
    );
    // AUTHFAILED is the last thing the server sends on that connection.
    for conn in &f.connections {
        if let Some(pos) = conn.iter().position(
            |d| matches!(d, Decoded::Reply { op: OpCode::Auth, frame } if frame.header.err != 0),
        ) {
            assert!(
                conn[pos + 1..]
                    .iter()
                    .all(|d| matches!(d, Decoded::Request(_))),
                "server kept talking after AUTHFAILED"
            );
        }
    }
    assert!(f.error_codes().contains(&ErrorCode::NoAuth.code()));
    let masked = f
        .replies(OpCode::GetAcl)
        .into_iter()
        .any(|r| match &r.response {
            Response::GetAcl(g) => g
                .acl
                .iter()
                .any(|a| a.id.scheme == "digest" && a.id.id.ends_with(":x")),
            _ => false,
        });
    assert!(masked, "getACL without credentials should mask digest ids");
}

#[test]
fn who_am_i_lists_ip_then_digest_identities() {
    let f = load("zkcli_whoami");
    let answers: Vec<Vec<(String, String)>> = f
        .replies(OpCode::WhoAmI)
        .iter()
        .filter_map(|r| match &r.response {
            Response::WhoAmI(w) => Some(
                w.client_info
                    .iter()
                    .map(|c| (c.auth_scheme.clone(), c.user.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(
        answers[0],
        vec![("ip".to_string(), "127.0.0.1".to_string())]
    );
    assert!(answers[1].contains(&("digest".to_string(), "u".to_string())));
}

#[test]
fn misc_ops_cover_ephemerals_children_count_sync_and_watch_removal() {
    let f = load("zkcli_misc");
    let ops = f.op_codes();
    for op in [
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::Sync,
        OpCode::RemoveWatches,
        OpCode::GetAcl,
        OpCode::SetAcl,
        OpCode::GetChildren2,
    ] {
        assert!(ops.contains(&op), "{op:?} not in {ops:?}");
    }
    let codes = f.error_codes();
    for code in [
        ErrorCode::NoWatcher,
        ErrorCode::BadVersion,
        ErrorCode::NoAuth,
        ErrorCode::NotEmpty,
    ] {
        assert!(
            codes.contains(&code.code()),
            "missing {code:?} in {codes:?}"
        );
    }
    let Some(Response::Sync(s)) = f.replies(OpCode::Sync).first().map(|r| r.response.clone())
    else {
        panic!("no sync reply")
    };
    assert_eq!(s.path.as_deref(), Some("/"));
}

#[test]
fn java_api_covers_check_watches_multi_read_and_ttl() {
    let f = load("java_api_misc");
    let ops = f.op_codes();
    for op in [
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::MultiRead,
        OpCode::CreateTtl,
        OpCode::CreateContainer,
        OpCode::WhoAmI,
    ] {
        assert!(ops.contains(&op), "{op:?} not in {ops:?}");
    }
    let read = f.replies(OpCode::MultiRead);
    let Response::Multi(m) = &read[0].response else {
        panic!()
    };
    assert!(matches!(m.results[0], MultiResult::GetData(_)));
    assert!(matches!(m.results[1], MultiResult::GetChildren(_)));
    assert_eq!(m.results[2], MultiResult::Error(ErrorCode::NoNode.code()));
    assert!(f.error_codes().contains(&ErrorCode::InvalidAcl.code()));
}
