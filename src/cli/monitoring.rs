//! `dirsync service`'s monitoring endpoint (README, "Monitoring"): `/metrics` and `/healthz` on
//! the configured address, each answered from `state.db` when asked. A small HTTP/1.1 server:
//! GET only, one request per connection, nothing a scraper or a load balancer's probe does not
//! need.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::now_ms;
use crate::home::Home;
use crate::runner::monitoring::{health, metrics_text, read_snapshot};

/// A request's head larger than this is refused: a probe sends a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A client that has not sent its request by then is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers requests on `listener` until the process ends.
pub async fn serve(listener: TcpListener, home: Home) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let home = home.clone();
                tokio::spawn(async move {
                    if let Err(error) = answer(stream, home).await {
                        tracing::debug!(%error, "a monitoring request was not answered");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept a monitoring connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, home: Home) -> std::io::Result<()> {
    let Ok(head) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await else {
        return Ok(());
    };
    let Some(head) = head? else {
        return respond(&mut stream, 400, "text/plain", "bad request\n").await;
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" {
        return respond(&mut stream, 405, "text/plain", "only GET\n").await;
    }
    if path != "/metrics" && path != "/healthz" {
        return respond(
            &mut stream,
            404,
            "text/plain",
            "not found: /metrics and /healthz\n",
        )
        .await;
    }
    // SQLite reads block: off the runtime's workers.
    let read = tokio::task::spawn_blocking(move || read_snapshot(&home)).await;
    let snapshot = match read {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(error)) => {
            let body = format!("cannot read the state: {error}\n");
            return respond(&mut stream, 503, "text/plain", &body).await;
        }
        Err(error) => {
            let body = format!("cannot read the state: {error}\n");
            return respond(&mut stream, 500, "text/plain", &body).await;
        }
    };
    let now = now_ms();
    if path == "/metrics" {
        let body = metrics_text(&snapshot, now);
        respond(
            &mut stream,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            &body,
        )
        .await
    } else {
        let verdict = health(&snapshot, now);
        let status = if verdict.healthy { 200 } else { 503 };
        respond(
            &mut stream,
            status,
            "text/plain; charset=utf-8",
            &format!("{}\n", verdict.reason),
        )
        .await
    }
}

/// The request line, once the whole head has arrived; `None` for something that is not one.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|window| window == b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().map(str::to_owned))
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let allow = if status == 405 { "Allow: GET\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
