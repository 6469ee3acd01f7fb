//! The management API: HTTP/1.1 + JSON on the unix socket
//! `STATE_DIR/api.sock` (mode 0600), served by axum on hyper. The routes
//! are described in `docs/api/phone.openapi.json` (OpenAPI 3.1), which a test checks
//! against [`ROUTES`]. The `pocketvisor phone` commands are its clients.
//!
//! Every error is a 4xx or 5xx with `{"error": "..."}` and changes
//! nothing: unknown routes and VMs (404), wrong methods (405), bad JSON
//! (400), bodies over [`MAX_BODY`] (413), requests the VM's state does not
//! allow (409). Consoles are raw byte streams after an HTTP upgrade
//! (`Upgrade: pocketvisor-console`). Connections are bounded
//! ([`MAX_CONNECTIONS`] at once) and must send their headers within
//! [`HEADER_TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{broadcast, Notify, Semaphore};

use crate::supervisor::{PhoneError, Supervisor};

#[path = "api_migration.rs"]
mod migration;

/// Largest request body.
pub const MAX_BODY: usize = 64 << 10;
/// Most connections served at once (more wait to be accepted).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The upgrade protocol of a console stream.
pub const CONSOLE_PROTOCOL: &str = "pocketvisor-console";

/// Every route: (method, path) as in the OpenAPI document.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/phone"),
    ("POST", "/phone/down"),
    ("GET", "/console"),
    ("GET", "/vms"),
    ("GET", "/vms/{name}"),
    ("GET", "/vms/{name}/stats"),
    ("POST", "/vms/{name}/start"),
    ("POST", "/vms/{name}/stop"),
    ("POST", "/vms/{name}/pause"),
    ("POST", "/vms/{name}/resume"),
    ("POST", "/vms/{name}/switch"),
    ("PUT", "/vms/{name}/balloon"),
    ("GET", "/vms/{name}/console"),
    ("GET", "/identity"),
    ("POST", "/vms/{name}/evidence"),
    ("POST", "/vms/{name}/snapshot"),
    ("POST", "/phone/restore"),
    ("POST", "/phone/adopt"),
    ("POST", "/vms/{name}/migrate"),
    ("GET", "/vms/{name}/migration"),
    ("DELETE", "/vms/{name}/migration"),
    ("POST", "/phone/receive"),
    ("GET", "/phone/receive"),
    ("DELETE", "/phone/receive"),
    ("POST", "/vms/{name}/export"),
    ("POST", "/vms/{name}/dump"),
    ("POST", "/vms/{name}/debug"),
];

/// What the handlers share.
#[derive(Clone)]
struct Api {
    phone: Arc<Supervisor>,
    /// Notified when `POST /phone/down` has stopped every VM.
    down: Arc<Notify>,
}

/// An error answer.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<PhoneError> for ApiError {
    fn from(e: PhoneError) -> Self {
        let status = match &e {
            PhoneError::NotFound(_) => StatusCode::NOT_FOUND,
            PhoneError::Conflict(_) => StatusCode::CONFLICT,
            PhoneError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PhoneError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PhoneError::Forbidden(_) => StatusCode::FORBIDDEN,
        };
        ApiError(status, e.to_string())
    }
}

type Answer = Result<Response, ApiError>;

fn ok() -> Answer {
    Ok(Json(json!({ "ok": true })).into_response())
}

/// Runs a supervisor call that may wait (stopping a VM, a pause) off the
/// async threads.
async fn blocking<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&Supervisor) -> Result<T, PhoneError> + Send + 'static,
) -> Result<T, ApiError> {
    let phone = api.phone.clone();
    tokio::task::spawn_blocking(move || f(&phone))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

async fn phone_status(State(api): State<Api>) -> Answer {
    Ok(Json(api.phone.status()).into_response())
}

async fn vm_list(State(api): State<Api>) -> Answer {
    Ok(Json(api.phone.status().vms).into_response())
}

async fn vm_status(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    api.phone.state(&name)?;
    let status = api.phone.status();
    let vm = status.vms.into_iter().find(|v| v.name == name);
    Ok(Json(vm).into_response())
}

async fn vm_stats(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    let report = api.phone.report(&name)?;
    let status = api.phone.status();
    let vm = status.vms.into_iter().find(|v| v.name == name);
    Ok(Json(json!({ "vm": vm, "report": report })).into_response())
}

/// `POST /vms/{name}/ACTION`: runs `action` on the VM and answers `{"ok": true}`.
fn vm_action(action: fn(&Supervisor, &str) -> Result<(), PhoneError>) -> MethodRouter<Api> {
    post(
        move |State(api): State<Api>, Path(name): Path<String>| async move {
            blocking(&api, move |p| action(p, &name)).await?;
            ok()
        },
    )
}

/// `PUT /vms/{name}/balloon`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalloonTarget {
    target_bytes: u64,
}

async fn vm_balloon(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Result<Json<BalloonTarget>, JsonRejection>,
) -> Answer {
    api.phone.state(&name)?;
    let Json(b) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    blocking(&api, move |p| p.set_balloon(&name, b.target_bytes)).await?;
    ok()
}

async fn identity(State(api): State<Api>) -> Answer {
    Ok(Json(json!({ "root_key": api.phone.root_key() })).into_response())
}

/// `POST /vms/{name}/evidence`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceRequest {
    /// The challenge, as hex.
    nonce: String,
}

async fn vm_evidence(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Result<Json<EvidenceRequest>, JsonRejection>,
) -> Answer {
    api.phone.state(&name)?;
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let nonce = trust::hex::decode(&r.nonce)
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "the nonce is not hex".to_string()))?;
    let evidence = api.phone.evidence(&name, &nonce)?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], evidence).into_response())
}

/// `POST /vms/{name}/snapshot`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    /// The snapshot directory to create (absolute).
    out: std::path::PathBuf,
}

async fn vm_snapshot(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Result<Json<SnapshotRequest>, JsonRejection>,
) -> Answer {
    api.phone.state(&name)?;
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    if !r.out.is_absolute() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "\"out\" must be an absolute path".into(),
        ));
    }
    let summary = blocking(&api, move |p| p.snapshot_vm(&name, &r.out)).await?;
    Ok(Json(summary).into_response())
}

/// `POST /phone/restore`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreRequest {
    /// The snapshot directory (absolute).
    snapshot: std::path::PathBuf,
    /// Start a clone of that name instead of the VM itself.
    #[serde(default, rename = "as")]
    as_name: Option<String>,
    /// The clone gets copies of the disks.
    #[serde(default)]
    copy_disks: bool,
    /// The clone runs on this backend instead of the original's.
    #[serde(default)]
    accel: Option<vmm::Accel>,
}

async fn phone_restore(
    State(api): State<Api>,
    body: Result<Json<RestoreRequest>, JsonRejection>,
) -> Answer {
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    if !r.snapshot.is_absolute() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "\"snapshot\" must be an absolute path".into(),
        ));
    }
    if r.copy_disks && r.as_name.is_none() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "\"copy_disks\" is for a clone (give \"as\")".into(),
        ));
    }
    if r.accel.is_some() && r.as_name.is_none() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "\"accel\" is for a clone (give \"as\")".into(),
        ));
    }
    let vm = blocking(&api, move |p| match &r.as_name {
        Some(name) => p
            .restore_clone(&r.snapshot, name, r.copy_disks, r.accel)
            .map(|()| name.clone()),
        None => p.restore_vm(&r.snapshot),
    })
    .await?;
    Ok(Json(json!({ "ok": true, "vm": vm })).into_response())
}

/// `POST /phone/adopt`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdoptRequest {
    /// The VM imported into the state directory.
    vm: String,
}

/// `POST /phone/adopt`: a VM imported while the phone runs joins it.
async fn phone_adopt(
    State(api): State<Api>,
    body: Result<Json<AdoptRequest>, JsonRejection>,
) -> Answer {
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    blocking(&api, move |p| p.adopt_imported(&r.vm)).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}

/// `POST /vms/{name}/ACTION` for what a trusted VM never allows (`what`:
/// "exported", …). Other VMs: not available yet (snapshots and images
/// are the next part of the platform).
fn guarded(what: &'static str) -> MethodRouter<Api> {
    post(
        move |State(api): State<Api>, Path(name): Path<String>| async move {
            api.phone.refuse_if_trusted(&name, what)?;
            Err::<Response, _>(ApiError(
                StatusCode::NOT_IMPLEMENTED,
                format!("VM \"{name}\" cannot be {what}: not available yet for phone VMs"),
            ))
        },
    )
}

/// `POST /vms/{name}/export`: whether the VM may be exported (`image
/// export` asks before it snapshots): 403 for a trusted VM.
async fn vm_export(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    api.phone.refuse_if_trusted(&name, "exported")?;
    ok()
}

async fn phone_down(State(api): State<Api>) -> Answer {
    blocking(&api, |p| {
        p.log("down requested through the API");
        p.stop_all(crate::supervisor::STOP_GRACE);
        Ok(())
    })
    .await?;
    api.down.notify_one();
    ok()
}

fn not_found_route(path: &str) -> ApiError {
    let shown: String = path.chars().take(100).collect();
    ApiError(StatusCode::NOT_FOUND, format!("no route {shown}"))
}

async fn fallback(req: Request) -> ApiError {
    not_found_route(req.uri().path())
}

async fn wrong_method(req: Request) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Which console a stream shows.
#[derive(Clone, Copy)]
enum Follow {
    /// Always VM number n.
    Vm(usize),
    /// Whichever VM is in the foreground.
    Foreground,
}

async fn console_vm(State(api): State<Api>, Path(name): Path<String>, req: Request) -> Answer {
    api.phone.state(&name)?;
    let i = api
        .phone
        .manifest()
        .vms
        .iter()
        .position(|v| v.name == name)
        .unwrap_or(0);
    upgrade(api, Follow::Vm(i), req)
}

async fn console_foreground(State(api): State<Api>, req: Request) -> Answer {
    upgrade(api, Follow::Foreground, req)
}

/// Answers `101 Switching Protocols` and streams the console on the
/// upgraded connection.
fn upgrade(api: Api, follow: Follow, mut req: Request) -> Answer {
    let asked = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(CONSOLE_PROTOCOL));
    if !asked {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "a console is a stream: send Connection: upgrade and Upgrade: {CONSOLE_PROTOCOL}"
            ),
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            stream_console(api, follow, TokioIo::new(upgraded)).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, CONSOLE_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_default())
}

/// Copies a VM's console output to the client and the client's bytes to
/// the VM, switching VMs with the foreground when following it.
async fn stream_console<S>(api: Api, follow: Follow, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut fg = api.phone.foreground();
    let mut current = match follow {
        Follow::Vm(i) => i,
        Follow::Foreground => *fg.borrow_and_update(),
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let Some(hub) = api.phone.console_at(current) else {
            return;
        };
        let (recent, mut rx) = hub.subscribe();
        if wr.write_all(&recent).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Ok(bytes) => {
                        if wr.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let (phone, bytes) = (api.phone.clone(), buf[..n].to_vec());
                        // A stopped VM takes no input; the stream stays.
                        let r = tokio::task::spawn_blocking(move || phone.input_at(current, &bytes)).await;
                        if let Ok(Err(e @ PhoneError::Forbidden(_))) = r {
                            let note = format!("\r\n[pocketvisor: {e}]\r\n");
                            if wr.write_all(note.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                },
                changed = fg.changed(), if matches!(follow, Follow::Foreground) => {
                    if changed.is_err() {
                        return;
                    }
                    current = *fg.borrow_and_update();
                    let name = &api.phone.manifest().vms[current].name;
                    let banner = format!("\r\n[pocketvisor: console of VM {} ({name})]\r\n", current + 1);
                    if wr.write_all(banner.as_bytes()).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// The API's routes.
fn router(api: Api) -> Router {
    Router::new()
        .route("/phone", get(phone_status))
        .route("/phone/down", post(phone_down))
        .route("/console", get(console_foreground))
        .route("/vms", get(vm_list))
        .route("/vms/{name}", get(vm_status))
        .route("/vms/{name}/stats", get(vm_stats))
        .route("/vms/{name}/balloon", put(vm_balloon))
        .route("/vms/{name}/console", get(console_vm))
        .route("/vms/{name}/start", vm_action(Supervisor::start_vm))
        .route("/vms/{name}/stop", vm_action(Supervisor::stop_vm))
        .route("/vms/{name}/pause", vm_action(Supervisor::pause_vm))
        .route("/vms/{name}/resume", vm_action(Supervisor::resume_vm))
        .route("/vms/{name}/switch", vm_action(Supervisor::switch_to))
        .route("/identity", get(identity))
        .route("/vms/{name}/evidence", post(vm_evidence))
        .route("/vms/{name}/snapshot", post(vm_snapshot))
        .route("/phone/restore", post(phone_restore))
        .route("/phone/adopt", post(phone_adopt))
        .route("/vms/{name}/migrate", post(migration::vm_migrate))
        .route(
            "/vms/{name}/migration",
            get(migration::vm_migration).delete(migration::vm_migration_cancel),
        )
        .route(
            "/phone/receive",
            post(migration::phone_receive)
                .get(migration::phone_receiving)
                .delete(migration::phone_receive_cancel),
        )
        .route("/vms/{name}/export", post(vm_export))
        .route("/vms/{name}/dump", guarded("dumped"))
        .route("/vms/{name}/debug", guarded("debugged"))
        .fallback(fallback)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Serves the API on `listener` until `POST /phone/down` has stopped the
/// phone or `shutdown` is notified.
pub async fn serve(listener: UnixListener, phone: Arc<Supervisor>, shutdown: Arc<Notify>) {
    let down = Arc::new(Notify::new());
    let app = router(Api {
        phone,
        down: down.clone(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = down.notified() => return,
            _ = shutdown.notified() => return,
        };
        let stream = tokio::select! {
            s = listener.accept() => match s {
                Ok((s, _)) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = down.notified() => return,
            _ = shutdown.notified() => return,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    /// Every route in [`super::ROUTES`] is in the OpenAPI document, and
    /// every operation there is a route.
    #[test]
    fn openapi_document_matches_the_routes() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/api/phone.openapi.json"))
                .expect("the OpenAPI document is JSON");
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                documented.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> = super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        documented.sort();
        assert_eq!(routes, documented);
    }
}
