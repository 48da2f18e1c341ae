//! Three participants elect a leader with LeaderLatch; the leader steps
//! down by closing its latch and another one takes over.
//!
//! `cargo run --example recipe_leader -- [connect-string]`

use std::time::Duration;

use zk_recipes::{Curator, LeaderLatch};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let curator = Curator::builder(&connect).connect().await?;
    let mut latches: Vec<LeaderLatch> = (0..3)
        .map(|i| LeaderLatch::start(&curator, "/examples/leader", &format!("participant-{i}")))
        .collect();
    for _ in 0..2 {
        let mut leader = None;
        for _ in 0..100 {
            leader = latches.iter().position(|l| l.has_leadership());
            if leader.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Some(index) = leader else {
            return Err("no leader elected".into());
        };
        println!("leader: {}", latches[index].id());
        println!("participants: {:?}", latches[0].participants().await?);
        latches.remove(index).close().await?;
    }
    for latch in latches {
        latch.close().await?;
    }
    curator.close().await;
    Ok(())
}
