//! A lock holder that pauses past its session timeout is fenced out.
//!
//! The holder's connection runs through a relay that we freeze, standing
//! in for a GC pause or a SIGSTOP: the holder cannot hear that its session
//! expired. Meanwhile another client takes the lock and writes. When the
//! holder wakes up it writes "as the holder" through its fence: the write
//! is a transaction that carries a check on the holder's lock node, so the
//! server refuses it and nothing is written. The fencing token (the lock
//! node's czxid) is what an external store would compare instead.
//!
//! `cargo run --example fencing -- [host:port]` (a server with a session
//! timeout of 4 s or less allowed, e.g. tickTime 2000).

use std::time::Duration;

use zk_client::CreateMode;
use zk_recipes::{Curator, Error, InterProcessMutex};
use zk_testkit::proxy::Proxy;

const RESOURCE: &str = "/examples/fencing/resource";
const LOCK: &str = "/examples/fencing/lock";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let relay = Proxy::start(server.parse()?)?;
    let session = Duration::from_secs(4);
    // The holder does not declare its session lost on its own: a paused
    // process would not either.
    let holder = Curator::builder(&relay.connect_string())
        .session_timeout(session)
        .simulated_expiry_percent(0)
        .connect()
        .await?;
    let other = Curator::builder(&server)
        .session_timeout(session)
        .connect()
        .await?;
    match other
        .create(RESOURCE, b"initial", CreateMode::Persistent)
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_node_exists() => {}
        Err(e) => return Err(e.into()),
    }

    let guard = InterProcessMutex::new(&holder, LOCK).acquire().await?;
    println!("holder has the lock, token {}", guard.token());
    let fence = guard.fence().clone();

    relay.pause();
    println!("holder paused; waiting for another client to get the lock");
    let taken = InterProcessMutex::new(&other, LOCK).acquire().await?;
    println!("other client has the lock, token {}", taken.token());
    taken
        .fence()
        .set_data(RESOURCE, b"written by the new holder", None)
        .await?;

    relay.resume();
    println!("holder resumes and writes as if it still held the lock");
    let outcome = loop {
        match fence
            .set_data(RESOURCE, b"written by the paused holder", None)
            .await
        {
            // Reconnecting: the server has not answered yet.
            Err(e) if zk_recipes::Retriable::is_retriable(&e) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => break other,
        }
    };
    match outcome {
        Err(Error::Fenced { path }) => println!("refused: the hold on {path} is gone"),
        other => println!("unexpected: {other:?}"),
    }
    let (data, _) = other.client().get_data(RESOURCE).await?;
    println!("resource = {:?}", String::from_utf8_lossy(&data));
    taken.release().await?;
    drop(guard);
    holder.close().await;
    other.close().await;
    Ok(())
}
