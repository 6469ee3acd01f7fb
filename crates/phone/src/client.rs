//! A client of a running phone's management API (the `pocketvisor phone`
//! commands use it): JSON requests, and console streams after an HTTP
//! upgrade, over `STATE_DIR/api.sock`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::api::CONSOLE_PROTOCOL;

/// Longest wait for an answer (stopping a phone waits for its guests).
const TIMEOUT: Duration = Duration::from_secs(120);

/// A phone's API, by its state directory.
pub struct Client {
    socket: PathBuf,
}

/// An answer: the HTTP status and the JSON body (`null` if none).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body as JSON.
    pub body: Value,
    /// The body's bytes (binary answers: evidence).
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body, or the API's error message as an error.
    pub fn ok(self) -> Result<Value, String> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(self.body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the phone answered {}", self.status)))
        }
    }
}

/// An answer's status and JSON body (`null` if empty, a string if not JSON).
async fn read_answer(res: hyper::Response<hyper::body::Incoming>) -> Result<Answer, String> {
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Ok(Answer {
        status,
        body,
        bytes: bytes.to_vec(),
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

impl Client {
    /// The phone whose state directory is `dir`.
    pub fn for_phone(dir: &Path) -> Client {
        Client {
            socket: dir.join("api.sock"),
        }
    }

    /// Whether a phone answers there.
    pub fn is_up(&self) -> bool {
        self.call("GET", "/phone", None)
            .is_ok_and(|a| a.status == 200)
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        // A full listen queue (a burst of clients) clears in moments.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match tokio::net::UnixStream::connect(&self.socket).await {
                Ok(s) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Err(e) => {
                    return Err(format!(
                        "no phone answers at '{}': {e}",
                        self.socket.display()
                    ))
                }
            }
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// Sends `method path` with an optional JSON body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.call_raw(method, path, body.into_bytes())
    }

    /// Sends `method path` with `body` as it is (tests send bad ones).
    pub fn call_raw(&self, method: &str, path: &str, body: Vec<u8>) -> Result<Answer, String> {
        runtime()?.block_on(async {
            tokio::time::timeout(TIMEOUT, async {
                let mut sender = self.connect().await?;
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", "phone")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
                read_answer(res).await
            })
            .await
            .map_err(|_| "the phone did not answer in time".to_string())?
        })
    }

    /// Opens the console stream at `path` (`/console` follows the
    /// foreground VM, `/vms/NAME/console` one VM): a blocking socket, and
    /// the bytes that already arrived with the upgrade.
    pub fn console(&self, path: &str) -> Result<(std::os::unix::net::UnixStream, Vec<u8>), String> {
        runtime()?.block_on(async {
            let mut sender = self.connect().await?;
            let req = Request::builder()
                .method("GET")
                .uri(path)
                .header("host", "phone")
                .header("connection", "upgrade")
                .header("upgrade", CONSOLE_PROTOCOL)
                .body(Full::new(Bytes::new()))
                .map_err(|e| e.to_string())?;
            let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
            if res.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
                return Err(read_answer(res).await?.ok().err().unwrap_or_default());
            }
            let upgraded = hyper::upgrade::on(res).await.map_err(|e| e.to_string())?;
            let parts = upgraded
                .downcast::<TokioIo<tokio::net::UnixStream>>()
                .map_err(|_| "unexpected console stream".to_string())?;
            let stream = parts
                .io
                .into_inner()
                .into_std()
                .map_err(|e| e.to_string())?;
            stream.set_nonblocking(false).map_err(|e| e.to_string())?;
            Ok((stream, parts.read_buf.to_vec()))
        })
    }
}
