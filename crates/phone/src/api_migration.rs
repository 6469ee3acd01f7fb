//! The API's migration routes: `POST /vms/{name}/migrate`, `GET` and
//! `DELETE /vms/{name}/migration` on the source; `POST`, `GET` and
//! `DELETE /phone/receive` on the target. Starting answers 202 at once;
//! the `GET`s follow the migration until it is done, failed or cancelled.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::{blocking, Answer, Api, ApiError};

/// The downtime a migration aims at unless told (QEMU's default).
pub const DEFAULT_MAX_DOWNTIME_MS: u32 = 300;

fn key(text: &str, what: &str) -> Result<ed25519_dalek::VerifyingKey, ApiError> {
    trust::identity::parse_public_key(text)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("\"{what}\": {e}")))
}

/// `POST /vms/{name}/migrate`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MigrateRequest {
    /// The target phone's `ADDRESS:PORT` (its `phone receive --listen`).
    to: String,
    /// The target phone's identity key (hex, as `phone identity` prints).
    target_key: String,
    /// The downtime to aim at, in milliseconds.
    max_downtime_ms: Option<u32>,
    /// Send the disks' contents too (the target keeps copies), during the
    /// pause.
    #[serde(default)]
    copy_disks: bool,
}

pub(super) async fn vm_migrate(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Result<Json<MigrateRequest>, JsonRejection>,
) -> Answer {
    api.phone.state(&name)?;
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let target = key(&r.target_key, "target_key")?;
    let ms = r.max_downtime_ms.unwrap_or(DEFAULT_MAX_DOWNTIME_MS);
    let copy = r.copy_disks;
    let status = blocking(&api, move |p| p.migrate_vm(&name, &r.to, target, ms, copy)).await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

pub(super) async fn vm_migration(State(api): State<Api>, Path(name): Path<String>) -> Answer {
    Ok(Json(api.phone.migration(&name)?).into_response())
}

pub(super) async fn vm_migration_cancel(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Answer {
    Ok(Json(api.phone.cancel_migration(&name)?).into_response())
}

/// `POST /phone/receive`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiveRequest {
    /// Where to listen (`ADDRESS:PORT`).
    listen: String,
    /// The source phone's identity key (hex).
    source_key: String,
}

pub(super) async fn phone_receive(
    State(api): State<Api>,
    body: Result<Json<ReceiveRequest>, JsonRejection>,
) -> Answer {
    let Json(r) = body.map_err(|r| ApiError(r.status(), r.body_text()))?;
    let source = key(&r.source_key, "source_key")?;
    let status = blocking(&api, move |p| p.receive_vm(&r.listen, source)).await?;
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

pub(super) async fn phone_receiving(State(api): State<Api>) -> Answer {
    Ok(Json(api.phone.receiving()?).into_response())
}

pub(super) async fn phone_receive_cancel(State(api): State<Api>) -> Answer {
    Ok(Json(api.phone.cancel_receive()?).into_response())
}
