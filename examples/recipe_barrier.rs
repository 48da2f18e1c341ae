//! Three workers meet at a DistributedDoubleBarrier, work, and leave
//! together.
//!
//! `cargo run --example recipe_barrier -- [connect-string]`

use std::time::Duration;

use zk_recipes::{Curator, DistributedDoubleBarrier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let curator = Curator::builder(&connect).connect().await?;
    let limit = Some(Duration::from_secs(30));
    let mut workers = Vec::new();
    for worker in 0..3u64 {
        let curator = curator.clone();
        workers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300 * worker)).await;
            let barrier = DistributedDoubleBarrier::new(&curator, "/examples/barrier", 3);
            println!("worker {worker} arrives");
            barrier.enter(limit).await?;
            println!("worker {worker} entered");
            tokio::time::sleep(Duration::from_millis(100 * worker)).await;
            barrier.leave(limit).await?;
            println!("worker {worker} left");
            Ok::<_, zk_recipes::Error>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    curator.close().await;
    Ok(())
}
