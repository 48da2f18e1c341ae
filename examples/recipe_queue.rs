//! A producer fills a DistributedQueue (Curator's item layout and framing)
//! and two consumers drain it.
//!
//! `cargo run --example recipe_queue -- [connect-string]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use zk_recipes::{Curator, DistributedQueue};

const ITEMS: usize = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let curator = Curator::builder(&connect).connect().await?;
    let producer = DistributedQueue::new(&curator, "/examples/queue");
    for i in 0..ITEMS {
        producer.put(format!("job-{i}").as_bytes()).await?;
    }
    let left = Arc::new(AtomicUsize::new(ITEMS));
    let mut consumers = Vec::new();
    for consumer in 0..2 {
        let (curator, left) = (curator.clone(), left.clone());
        consumers.push(tokio::spawn(async move {
            let queue = DistributedQueue::new(&curator, "/examples/queue");
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let item = queue.take().await?;
                println!("consumer {consumer}: {}", String::from_utf8_lossy(&item));
            }
            Ok::<_, zk_recipes::Error>(())
        }));
    }
    for consumer in consumers {
        consumer.await??;
    }
    curator.close().await;
    Ok(())
}
