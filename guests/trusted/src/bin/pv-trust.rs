//! `pv-trust`: the open VM's client of the trusted services.
//!
//! ```text
//! pv-trust [--cid N] attest NONCE_HEX               EVIDENCE <hex>
//! pv-trust [--cid N] auth enroll PIN                ENROLLED <statement hex>
//! pv-trust [--cid N] auth sign CHALLENGE_HEX PIN    SIGNATURE <hex> KEY <hex>
//! pv-trust [--cid N] drm device-key                 DEVICE-KEY <statement hex>
//! pv-trust [--cid N] drm play PROVIDER_PORT         PLAYED sha256=<hex> bytes=<n>
//! pv-trust [--cid N] billing charge CENTS MERCHANT  RECEIPT <hex>
//! pv-trust [--cid N] billing ledger                 LEDGER charges=<n> total=<cents>
//! pv-trust [--cid N] flood PORT CONNECTIONS         FLOOD connections=<n> failed=<n>
//! pv-trust [--cid N] bench attest|sign|charge COUNT BENCH <op> n=<n> p50_us=<n> p99_us=<n>
//!                                                   (COUNT requests on one connection)
//! ```
//! The trusted VM's CID defaults to 5. A refusal prints `ERROR <why>` and
//! exits 1. `drm play` fetches a license and content from a content
//! provider listening on host port PROVIDER_PORT, then has the DRM VM play
//! them: only a digest comes back.

use std::io::Write;
use std::time::Instant;

use pv_trust::client::ServiceClient;
use pv_trust::drm::{ProviderReply, ProviderRequest};
use pv_trust::wire::{
    ServiceRequest as Q, ServiceResponse as A, ATTEST_PORT, AUTH_PORT, BILLING_PORT, DRM_PORT,
    MAX_FRAME,
};
use trust::hex;

fn fail(message: &str) -> ! {
    println!("ERROR {message}");
    std::process::exit(1)
}

fn call(cid: u32, port: u32, request: &Q) -> A {
    let mut c = ServiceClient::connect(cid, port).unwrap_or_else(|e| fail(&e));
    match c.call(request) {
        Ok(A::Error { message }) => fail(&message),
        Ok(a) => a,
        Err(e) => fail(&e),
    }
}

fn signed(a: A) -> String {
    match a {
        A::Signed { bytes } => hex::encode(&bytes),
        other => fail(&format!("unexpected answer {other:?}")),
    }
}

fn hex_arg(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|| fail(&format!("'{s}' is not hex")))
}

fn number(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("'{s}' is not a number")))
}

fn drm_play(cid: u32, provider_port: u32) -> String {
    let statement = match call(cid, DRM_PORT, &Q::DrmDeviceKey) {
        A::Signed { bytes } => bytes,
        other => fail(&format!("unexpected answer {other:?}")),
    };
    let mut provider = pv_trust::vsock::connect(pv_trust::vsock::HOST_CID, provider_port)
        .unwrap_or_else(|e| fail(&format!("cannot reach the content provider: {e}")));
    trust::device::write_message_up_to(&mut provider, &ProviderRequest { statement }, MAX_FRAME)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let body = trust::device::read_frame_up_to(&mut provider, MAX_FRAME)
        .ok()
        .flatten()
        .unwrap_or_else(|| fail("the content provider hung up"));
    let (license, content) = match ciborium::from_reader(body.as_slice()) {
        Ok(ProviderReply::Licensed { license, content }) => (license, content),
        Ok(ProviderReply::Refused { message }) => fail(&format!("the provider refused: {message}")),
        Err(e) => fail(&format!("bad provider answer: {e}")),
    };
    match call(cid, DRM_PORT, &Q::DrmPlay { license, content }) {
        A::Played { sha256, bytes } => {
            format!("PLAYED sha256={} bytes={bytes}", hex::encode(&sha256))
        }
        other => fail(&format!("unexpected answer {other:?}")),
    }
}

/// Opens `count` connections to `port`, 50 at a time, each sending
/// garbage; counts those that could not connect.
fn flood(cid: u32, port: u32, count: u64) -> String {
    let mut failed = 0;
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(50);
        let mut open = Vec::new();
        for i in 0..batch {
            match pv_trust::vsock::connect(cid, port) {
                Ok(mut s) => {
                    // A frame claiming 4 GiB, or CBOR that is no request.
                    let garbage: &[u8] = if i % 2 == 0 {
                        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]
                    } else {
                        &[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]
                    };
                    let _ = s.write_all(garbage);
                    open.push(s);
                }
                Err(_) => failed += 1,
            }
        }
        drop(open);
        done += batch;
    }
    format!("FLOOD connections={count} failed={failed}")
}

/// `count` requests of kind `op` on one connection, each timed from
/// sending to the answer.
fn bench(cid: u32, op: &str, count: u64) -> String {
    let port = match op {
        "attest" => ATTEST_PORT,
        "sign" => AUTH_PORT,
        "charge" => BILLING_PORT,
        other => fail(&format!("no benchmark {other}")),
    };
    let mut client = ServiceClient::connect(cid, port).unwrap_or_else(|e| fail(&e));
    let pin = std::env::var("PV_PIN").unwrap_or_else(|_| "1234".into());
    let mut times = Vec::new();
    for i in 0..count {
        let request = match op {
            "attest" => Q::Evidence {
                nonce: i.to_le_bytes().to_vec(),
            },
            "sign" => Q::AuthSign {
                challenge: i.to_le_bytes().to_vec(),
                pin: pin.clone(),
            },
            _ => Q::BillingCharge {
                amount: 1,
                merchant: "bench".into(),
            },
        };
        let start = Instant::now();
        match client.call(&request) {
            Ok(A::Error { message }) => fail(&message),
            Ok(_) => {}
            Err(e) => fail(&e),
        }
        times.push(start.elapsed().as_micros() as u64);
    }
    times.sort_unstable();
    let pick = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "BENCH {op} n={count} p50_us={} p99_us={}",
        pick(0.5),
        pick(0.99)
    )
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut cid = 5u32;
    if args.first().map(String::as_str) == Some("--cid") && args.len() > 1 {
        cid = number(&args[1]) as u32;
        args.drain(..2);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = match a.as_slice() {
        ["attest", nonce] => format!(
            "EVIDENCE {}",
            signed(call(
                cid,
                ATTEST_PORT,
                &Q::Evidence {
                    nonce: hex_arg(nonce)
                }
            ))
        ),
        ["auth", "enroll", pin] => format!(
            "ENROLLED {}",
            signed(call(
                cid,
                AUTH_PORT,
                &Q::AuthEnroll {
                    pin: pin.to_string()
                }
            ))
        ),
        ["auth", "sign", challenge, pin] => {
            let request = Q::AuthSign {
                challenge: hex_arg(challenge),
                pin: pin.to_string(),
            };
            match call(cid, AUTH_PORT, &request) {
                A::Signature {
                    signature,
                    public_key,
                } => format!(
                    "SIGNATURE {} KEY {}",
                    hex::encode(&signature),
                    hex::encode(&public_key)
                ),
                other => fail(&format!("unexpected answer {other:?}")),
            }
        }
        ["drm", "device-key"] => format!(
            "DEVICE-KEY {}",
            signed(call(cid, DRM_PORT, &Q::DrmDeviceKey))
        ),
        ["drm", "play", port] => drm_play(cid, number(port) as u32),
        ["billing", "charge", cents, merchant] => {
            let request = Q::BillingCharge {
                amount: number(cents),
                merchant: merchant.to_string(),
            };
            format!("RECEIPT {}", signed(call(cid, BILLING_PORT, &request)))
        }
        ["billing", "ledger"] => match call(cid, BILLING_PORT, &Q::BillingLedger) {
            A::Ledger { charges, total } => format!("LEDGER charges={charges} total={total}"),
            other => fail(&format!("unexpected answer {other:?}")),
        },
        ["flood", port, count] => flood(cid, number(port) as u32, number(count)),
        ["bench", op, count] => bench(cid, op, number(count)),
        _ => fail(
            "usage: pv-trust [--cid N] attest|auth|drm|billing|flood|bench ... (see its source)",
        ),
    };
    println!("{out}");
}
