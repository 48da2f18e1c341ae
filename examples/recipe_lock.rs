//! Four tasks take turns under one InterProcessMutex (Curator's layout, so
//! a Java service using the same path would queue with them).
//!
//! `cargo run --example recipe_lock -- [connect-string]`

use std::time::Duration;

use zk_recipes::{Curator, InterProcessMutex};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connect = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let curator = Curator::builder(&connect).connect().await?;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let curator = curator.clone();
        tasks.push(tokio::spawn(async move {
            // A handle per task (sharing one would serialise them locally).
            let lock = InterProcessMutex::new(&curator, "/examples/lock");
            let guard = lock.acquire().await?;
            println!("worker {worker} holds {}", guard.path());
            tokio::time::sleep(Duration::from_millis(200)).await;
            guard.release().await?;
            Ok::<_, zk_recipes::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    curator.close().await;
    Ok(())
}
