//! Raw HTTP for what a well-behaved client library will not send.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// POSTs to `path` headers announcing a 1000-byte JSON body, sends one byte
/// of it and waits up to 5 s; returns what the server answered before it
/// closed the connection, or why the exchange failed (neither an answer nor
/// a close within 5 s is one).
pub async fn stall_a_body(address: &str, path: &str, bearer: &str) -> String {
    match exchange(address, path, bearer).await {
        Ok(answer) => answer,
        Err(error) => format!("no answer: {error}"),
    }
}

async fn exchange(address: &str, path: &str, bearer: &str) -> std::io::Result<String> {
    let host = address.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
