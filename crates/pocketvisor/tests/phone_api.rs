//! The management API under abuse: bad JSON, unknown routes and VMs, wrong
//! methods, a body over 64 KiB, a console request without the upgrade, and
//! 1,000 connections opened and dropped (some with half a request) each get
//! a clear answer or are closed — and the phone goes on running and
//! answering, its VM untouched. Every route of the OpenAPI document exists.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::phone::{TestPhone, VmSpec};
use serde_json::{json, Value};

#[test]
fn api_abuse_leaves_the_phone_running() {
    let vms = [VmSpec::new("solo", "open").with("balloon = true")];
    let p = TestPhone::up("memory = \"256M\"", &vms, "");
    let c = p.client();
    let pid = p.vm("solo")["pid"].clone();
    let socket = p.state.join("api.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "api.sock mode");

    let expect = |method: &str, path: &str, body: Vec<u8>, status: u16, words: &str| {
        let a = c.call_raw(method, path, body).unwrap();
        assert_eq!(a.status, status, "{method} {path}: {:?}", a.body);
        let e = a.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no JSON error: {:?}", a.body));
        assert!(e.contains(words), "{method} {path}: {e:?} lacks {words:?}");
    };
    expect("GET", "/nowhere", vec![], 404, "no route /nowhere");
    expect("GET", "/vms/solo/nothing", vec![], 404, "no route");
    expect("POST", "/vms/solo/explode", vec![], 404, "no route");
    expect("GET", "/vms/ghost", vec![], 404, "no VM named \"ghost\"");
    expect("POST", "/vms/ghost/pause", vec![], 404, "no VM named");
    expect("DELETE", "/phone", vec![], 405, "not allowed");
    expect("PUT", "/vms/solo/balloon", b"{not json".to_vec(), 400, "");
    expect(
        "PUT",
        "/vms/solo/balloon",
        br#"{"target_bytes":"lots"}"#.to_vec(),
        422,
        "",
    );
    expect(
        "PUT",
        "/vms/solo/balloon",
        br#"{"target_bytes":1,"x":2}"#.to_vec(),
        422,
        "",
    );
    expect(
        "PUT",
        "/vms/solo/balloon",
        br#"{"target_bytes":999999999999}"#.to_vec(),
        400,
        "at most",
    );
    // A body over the limit: the phone may answer 413 and close before
    // the client has written it all, so write it raw and read the answer
    // whatever became of the writing.
    {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "PUT /vms/solo/balloon HTTP/1.1\r\nhost: phone\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            1 << 20
        );
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&vec![b' '; 1 << 20]);
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    expect("POST", "/vms/solo/start", vec![], 409, "already running");
    expect(
        "GET",
        "/vms/solo/console",
        vec![],
        400,
        "Upgrade: pocketvisor-console",
    );

    // Every documented route exists (an unknown VM is not an unknown route).
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/api/phone.openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{name}") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let a = c
                .call_raw(
                    &method.to_uppercase(),
                    &path.replace("{name}", "ghost"),
                    vec![],
                )
                .unwrap();
            assert_eq!(a.status, 404, "{method} {path}");
            assert!(
                a.body["error"].as_str().unwrap().contains("no VM named"),
                "{method} {path}: {:?}",
                a.body
            );
        }
    }

    // 1,000 connections opened and dropped, some mid-request.
    for i in 0..1000 {
        let mut s = UnixStream::connect(&socket).unwrap();
        match i % 4 {
            0 => {}
            1 => {
                let _ = s.write_all(b"GET /pho");
            }
            2 => {
                let _ = s.write_all(
                    b"PUT /vms/solo/balloon HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{",
                );
            }
            _ => {
                let _ = s.write_all(b"\x00\xff garbage \r\n\r\n");
            }
        }
    }
    // A valid request still works, and changed what it should.
    let a = c
        .call(
            "PUT",
            "/vms/solo/balloon",
            Some(&json!({"target_bytes": 32u64 << 20})),
        )
        .unwrap();
    assert_eq!(a.status, 200, "{:?}", a.body);
    let status = p.status();
    assert_eq!(status["vms"][0]["state"], "running");
    assert_eq!(status["vms"][0]["pid"], pid, "the VM was never restarted");
    assert_eq!(status["vms"][0]["restarts"], 0);
    // The guest still answers on its console.
    p.run_in("solo", "echo STILL-$((40+2))", Duration::from_secs(60));
    assert!(p.console_log("solo").contains("STILL-42"));

    // pause and resume through the CLI.
    assert!(p.cli(&["pause", "solo"]).status.success());
    assert_eq!(p.vm("solo")["state"], "paused");
    assert!(p.cli(&["resume", "solo"]).status.success());
    assert_eq!(p.vm("solo")["state"], "running");
    // CLI errors: one line, exit 1, nothing changed.
    let out = p.cli(&["pause", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "pocketvisor: the phone has no VM named \"ghost\""
    );
}
