//! Three participants elect a leader with LeaderLatch; the leader steps
//! down by closing its latch and another one takes over. Every
//! participant's leadership is a stream of transitions, each term with its
//! fencing token.
//!
//! `cargo run --example recipe_leader -- [connect-string]`

use std::time::Duration;

use futures::stream::{select_all, StreamExt};
use zk_recipes::{Curator, LeaderLatch, LeadershipEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let curator = Curator::builder(&connect).connect().await?;
    let mut latches: Vec<Option<LeaderLatch>> = (0..3)
        .map(|i| {
            Some(LeaderLatch::start(
                &curator,
                "/examples/leader",
                &format!("participant-{i}"),
            ))
        })
        .collect();
    // One feed of (participant, transition) for all of them.
    let mut transitions = select_all(
        latches
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, latch)| latch.transitions().map(move |event| (i, event))),
    );
    for _ in 0..2 {
        let elected = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some((i, event)) = transitions.next().await {
                match event {
                    LeadershipEvent::IsLeader(fence) => return Some((i, fence.token())),
                    LeadershipEvent::NotLeader => println!("participant-{i} stepped down"),
                }
            }
            None
        })
        .await;
        let Ok(Some((index, token))) = elected else {
            return Err("no leader elected".into());
        };
        let Some(latch) = latches[index].take() else {
            return Err("a closed participant was elected".into());
        };
        println!("leader: {} (token {token})", latch.id());
        println!("participants: {:?}", latch.participants().await?);
        latch.close().await?;
    }
    for latch in latches.into_iter().flatten() {
        latch.close().await?;
    }
    curator.close().await;
    Ok(())
}
