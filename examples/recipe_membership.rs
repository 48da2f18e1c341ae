//! Group membership with a PathChildrenCache: members are ephemeral nodes
//! under /examples/members; the cache prints joins and departures.
//!
//! `cargo run --example recipe_membership -- [connect-string]`

use std::time::Duration;

use futures::StreamExt;
use zk_client::CreateMode;
use zk_recipes::{Curator, PathChildrenCache, PathChildrenEvent, StartMode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let watcher = Curator::builder(&connect).connect().await?;
    let (cache, mut events) = PathChildrenCache::start(
        &watcher,
        "/examples/members",
        StartMode::PostInitializedEvent,
    );
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                PathChildrenEvent::ChildAdded(c) => println!("joined: {}", c.path),
                PathChildrenEvent::ChildRemoved(c) => println!("left:   {}", c.path),
                PathChildrenEvent::Initialized(c) => println!("initial members: {}", c.len()),
                other => println!("{other:?}"),
            }
        }
    });
    for i in 0..3 {
        let member = Curator::builder(&connect).connect().await?;
        member
            .create(
                &format!("/examples/members/m{i}"),
                b"",
                CreateMode::Ephemeral,
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Closing the session removes the ephemeral: the member leaves.
        member.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "members now: {:?}",
        cache.current_data().keys().collect::<Vec<_>>()
    );
    cache.close().await;
    printer.await?;
    watcher.close().await;
    Ok(())
}
