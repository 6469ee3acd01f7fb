//! `pv-trustd`'s request handling: which port takes which requests, one
//! lock per service (their sealed state is read, changed and saved as a
//! whole), and a bounded number of connections at once.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trust::device::{read_frame_up_to, write_message_up_to};
use trust::{Request, Response};

use crate::vault::{Storage, TrustLink, Vault};
use crate::wire::{
    ServiceRequest, ServiceResponse, Statement, ATTEST_PORT, AUTH_PORT, BILLING_PORT, DRM_PORT,
    MAX_FRAME,
};
use crate::{auth, billing, drm};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection idle this long is closed.
pub const IDLE: Duration = Duration::from_secs(10);

/// Signs `statement` as the VM (through the trust device).
pub fn sign_statement(
    trust: &dyn TrustLink,
    statement: &Statement,
) -> Result<ServiceResponse, String> {
    match trust.call(&Request::Sign {
        data: statement.encode(),
    })? {
        Response::Signed { bytes } => Ok(ServiceResponse::Signed { bytes }),
        Response::Error { message } => Err(message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// The services of one trusted VM.
pub struct Services {
    trust: Box<dyn TrustLink>,
    storage: Box<dyn Storage>,
    output: Mutex<Box<dyn Write + Send>>,
    auth: Mutex<()>,
    billing: Mutex<()>,
    connections: AtomicUsize,
}

impl Services {
    /// Services sealing with `trust`, storing in `storage`, playing
    /// content to `output`.
    pub fn new(
        trust: Box<dyn TrustLink>,
        storage: Box<dyn Storage>,
        output: Box<dyn Write + Send>,
    ) -> Services {
        Services {
            trust,
            storage,
            output: Mutex::new(output),
            auth: Mutex::new(()),
            billing: Mutex::new(()),
            connections: AtomicUsize::new(0),
        }
    }

    /// Answers `request` that arrived on `port`.
    pub fn handle(&self, port: u32, request: &ServiceRequest) -> ServiceResponse {
        let vault = Vault::new(self.trust.as_ref(), self.storage.as_ref());
        let result = match (port, request) {
            (_, ServiceRequest::Evidence { nonce }) => {
                match self.trust.call(&Request::Evidence {
                    nonce: nonce.clone(),
                }) {
                    Ok(Response::Signed { bytes }) => Ok(ServiceResponse::Signed { bytes }),
                    Ok(Response::Error { message }) => Err(message),
                    Ok(other) => Err(format!("unexpected answer {other:?}")),
                    Err(e) => Err(e),
                }
            }
            (AUTH_PORT, ServiceRequest::AuthEnroll { pin }) => {
                let _g = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                auth::enroll(&vault, pin)
            }
            (AUTH_PORT, ServiceRequest::AuthSign { challenge, pin }) => {
                let _g = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                auth::sign(&vault, challenge, pin)
            }
            (DRM_PORT, ServiceRequest::DrmDeviceKey) => {
                drm::device_key_statement(self.trust.as_ref())
            }
            (DRM_PORT, ServiceRequest::DrmPlay { license, content }) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                drm::play(self.trust.as_ref(), &self.output, license, content, now)
            }
            (BILLING_PORT, ServiceRequest::BillingCharge { amount, merchant }) => {
                let _g = self.billing.lock().unwrap_or_else(|e| e.into_inner());
                billing::charge(&vault, *amount, merchant)
            }
            (BILLING_PORT, ServiceRequest::BillingLedger) => {
                let _g = self.billing.lock().unwrap_or_else(|e| e.into_inner());
                billing::ledger(&vault)
            }
            (port, _) => Err(format!("port {port} does not serve that request")),
        };
        result.unwrap_or_else(|message| ServiceResponse::Error { message })
    }

    /// Serves one connection on `port` until the client closes it, breaks
    /// the protocol or stays idle for [`IDLE`].
    pub fn serve(&self, port: u32, mut stream: UnixStream) {
        if self.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let _ = stream.set_read_timeout(Some(IDLE));
        let _ = stream.set_write_timeout(Some(IDLE));
        while let Ok(Some(body)) = read_frame_up_to(&mut stream, MAX_FRAME) {
            let Ok(request) = ciborium::from_reader::<ServiceRequest, _>(body.as_slice()) else {
                break;
            };
            let response = self.handle(port, &request);
            if write_message_up_to(&mut stream, &response, MAX_FRAME).is_err() {
                break;
            }
        }
        self.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every port the services listen on.
pub const PORTS: [u32; 4] = [ATTEST_PORT, AUTH_PORT, DRM_PORT, BILLING_PORT];

/// Binds `port`, then serves it forever on a thread of its own (a thread
/// per connection). Returns once the port accepts connections, so the
/// caller may announce it.
pub fn listen(services: Arc<Services>, port: u32) -> std::io::Result<()> {
    let listener = crate::vsock::Listener::bind(port)?;
    std::thread::spawn(move || accept_forever(&services, port, &listener));
    Ok(())
}

fn accept_forever(services: &Arc<Services>, port: u32, listener: &crate::vsock::Listener) -> ! {
    loop {
        let (stream, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(_) => continue,
        };
        let s = services.clone();
        let _ = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || s.serve(port, stream));
    }
}
