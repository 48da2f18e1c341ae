//! Watches a config node and prints every change.
//!
//! ```sh
//! cargo run --example watch_config -- 127.0.0.1:2181 /app/config
//! ```
//!
//! Uses a one-shot data watch re-armed after each event (the classic
//! pattern), so every change is read back with the data that caused it.
//! Creation and deletion of the node are followed too. Stops after the
//! session ends (Expired, AuthFailed, Closed) or on Ctrl-C.

use zk_client::{Client, EventType, Result, SessionState, Watch};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let servers = args.next().unwrap_or_else(|| "127.0.0.1:2181".into());
    let path = args.next().unwrap_or_else(|| "/config".into());

    let client = Client::connect(&servers).await?;
    println!(
        "connected, session {:#x}; watching {path}",
        client.session_id()
    );
    tokio::select! {
        result = watch_forever(&client, &path) => result?,
        _ = tokio::signal::ctrl_c() => println!("interrupted"),
    }
    client.close().await
}

/// Prints the node's current value, then waits for the next change.
async fn watch_forever(client: &Client, path: &str) -> Result<()> {
    loop {
        let watch = print_current(client, path).await?;
        let event = watch.await;
        if event.event_type == EventType::None {
            println!("session ended: {:?}", event.state);
            return Ok(());
        }
        println!("event: {:?} on {}", event.event_type, event.path);
        if client.state() == SessionState::Closed {
            return Ok(());
        }
    }
}

/// Reads the node (or notes its absence) and arms a watch for its next change.
async fn print_current(client: &Client, path: &str) -> Result<Watch> {
    match client.get_data_and_watch(path).await {
        Ok((data, stat, watch)) => {
            println!(
                "{path} (version {}): {}",
                stat.version,
                String::from_utf8_lossy(&data)
            );
            Ok(watch)
        }
        Err(zk_client::Error::NoNode) => {
            // The node may be created between the two calls; exists-watch
            // catches that, and the loop reads it back.
            let (stat, watch) = client.exists_and_watch(path).await?;
            if stat.is_none() {
                println!("{path} does not exist (yet)");
            }
            Ok(watch)
        }
        Err(e) => Err(e),
    }
}
