//! Network stand-ins on 127.0.0.1 only.

use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// An endpoint that accepts connections and never reads or answers them:
/// a hanging AWS endpoint. Abort the handle to close it.
pub async fn silent_listener() -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock); // accepted, never read, never answered
        }
    });
    (addr, held)
}
