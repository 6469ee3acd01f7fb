//! Clients: of the phone's trust device (for the services, over vsock to
//! the host) and of the services (for `pv-trust` in the open VM).

use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use trust::device::{call, read_frame_up_to, write_message_up_to};
use trust::{Request, Response};

use crate::vault::TrustLink;
use crate::vsock;
use crate::wire::{ServiceRequest, ServiceResponse, MAX_FRAME};

/// The trust device over vsock: one connection, made again if it breaks.
#[derive(Default)]
pub struct VsockTrust {
    stream: Mutex<Option<UnixStream>>,
}

impl TrustLink for VsockTrust {
    fn call(&self, request: &Request) -> Result<Response, String> {
        let mut slot = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            if slot.is_none() {
                let s = vsock::connect(vsock::HOST_CID, trust::TRUST_PORT)
                    .map_err(|e| format!("no trust device: {e}"))?;
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                *slot = Some(s);
            }
            let stream = slot.as_mut().expect("connected above");
            match call(stream, request) {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 1 => return Err(format!("the trust device failed: {e}")),
                Err(_) => *slot = None,
            }
        }
        unreachable!("the loop returns")
    }
}

/// A connection to one of the trusted VM's services.
pub struct ServiceClient {
    stream: UnixStream,
}

impl ServiceClient {
    /// Connects to `port` of the VM with CID `cid`.
    pub fn connect(cid: u32, port: u32) -> Result<ServiceClient, String> {
        let stream = vsock::connect(cid, port)
            .map_err(|e| format!("cannot reach CID {cid} port {port}: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        Ok(ServiceClient { stream })
    }

    /// Over an existing stream (tests).
    pub fn over(stream: UnixStream) -> ServiceClient {
        ServiceClient { stream }
    }

    /// Sends `request`, returns the answer.
    pub fn call(&mut self, request: &ServiceRequest) -> Result<ServiceResponse, String> {
        write_message_up_to(&mut self.stream, request, MAX_FRAME).map_err(|e| e.to_string())?;
        let body = read_frame_up_to(&mut self.stream, MAX_FRAME)
            .map_err(|e| e.to_string())?
            .ok_or("the service hung up")?;
        ciborium::from_reader(body.as_slice()).map_err(|e| format!("bad answer: {e}"))
    }
}
