//! The intake HTTP API: submit an application, follow it, fetch and verify a certificate,
//! the public keys, the OpenAPI document and the health probes.

use crate::channels::{ChannelKeys, Refusal};
use crate::{
    intake::{Intake, Receipt, SubmitError},
    status::{self, ApplicationView, CertificateView},
    validate::FieldError,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use prh_common::{application::ApplicationForm, bus::Health, config::Settings, id_number::redact, signing::KeyRing};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

#[derive(Clone)]
pub struct ApiState {
    pub intake: Arc<Intake>,
    /// Each channel's API key; the key of a submission decides its channel.
    pub channels: Arc<ChannelKeys>,
    /// Read per request: the collector may create or rotate the key after intake starts.
    pub settings: Arc<Settings>,
    pub health: Health,
    /// Each officer's API key, for the office endpoints.
    pub officers: Arc<crate::office_api::OfficerKeys>,
}

impl ApiState {
    /// The calendar, time limits and date the status views are computed with.
    pub fn context(&self) -> status::Context<'_> {
        status::Context {
            calendar: &self.intake.calendar,
            policies: &self.intake.policies,
            today: self.intake.clock.today(),
        }
    }

    fn keys(&self) -> Result<KeyRing, Box<Response>> {
        self.settings
            .trusted_keys()
            .map_err(|e| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PRH intake API",
        description = "Public rental housing (公租房) applications: one form, one submission."
    ),
    paths(
        submit,
        get_application,
        get_certificate,
        get_keys,
        crate::office_api::list_reviews,
        crate::office_api::review,
        crate::office_api::pause,
        crate::office_api::resume,
        crate::office_api::object,
        crate::office_api::revoke,
        crate::office_api::recheck,
        crate::office_api::deadlines
    ),
    components(schemas(
        ApplicationForm,
        Receipt,
        FieldErrors,
        FieldError,
        ApplicationView,
        CertificateView,
        KeyList
    ))
)]
struct ApiDoc;

/// The router; `max_body` bounds request bodies (413 beyond).
pub fn router(state: ApiState, max_body: usize) -> Router {
    Router::new()
        .route("/v1/applications", post(submit).layer(DefaultBodyLimit::max(max_body)))
        .route("/v1/applications/{id}", get(get_application))
        .route("/v1/certificates/{number}", get(get_certificate))
        .route("/v1/keys", get(get_keys))
        .merge(crate::office_api::routes())
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .merge(probes(state.health.clone()))
        .with_state(state)
}

/// `/livez` and `/readyz`, for every long-running process.
pub fn probes<S: Clone + Send + Sync + 'static>(health: Health) -> Router<S> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/metrics", get(|| async { prh_common::metrics::render() }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    let code = if health.is_ready() {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (
                        code,
                        Json(json!({ "ready": health.is_ready(), "components": health.snapshot() })),
                    )
                }
            }),
        )
}

/// 422 body: every field-level error.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrors {
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<PublicKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKey {
    pub key_id: String,
    pub algorithm: String,
    /// base64 of the 32-byte Ed25519 public key
    pub public_key: String,
}

pub fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// Parses a JSON form, naming the field where the JSON does not fit.
pub fn parse_form(body: &[u8]) -> Result<ApplicationForm, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, "malformed_json", redact(&e.inner().to_string()))
    })
}

/// Submit an application (申请).
#[utoipa::path(
    post, path = "/v1/applications", request_body = ApplicationForm,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first answer"),
        ("X-Api-Key" = Option<String>, Header, description = "The submitting channel's key; required when intake.api_keys are configured"),
    ),
    responses(
        (status = 202, description = "Accepted; the departments are being asked", body = Receipt),
        (status = 401, description = "X-Api-Key missing or unknown (when intake.api_keys are configured)"),
        (status = 409, description = "Idempotency-Key reused with a different body"),
        (status = 413, description = "Body too large"),
        (status = 422, description = "Field-level errors", body = FieldErrors),
    )
)]
async fn submit(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let channel = match state.channels.identify(api_key) {
        Ok(channel) => channel,
        Err(Refusal::Missing) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "X-Api-Key is required: each intake channel (app, portal, window, partner) has its own key",
            );
        }
        Err(Refusal::Unknown) => return error(StatusCode::UNAUTHORIZED, "X-Api-Key is not the key of any channel"),
    };
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(FieldErrors { errors: vec![e] })).into_response();
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > 200) {
        return error(StatusCode::BAD_REQUEST, "Idempotency-Key is longer than 200 characters");
    }
    match state.intake.submit(&form, key, channel).await {
        Ok(receipt) => (StatusCode::ACCEPTED, Json(receipt)).into_response(),
        Err(SubmitError::Invalid(errors)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(FieldErrors { errors })).into_response()
        }
        Err(e @ SubmitError::KeyReused) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e @ SubmitError::NoPolicy(_)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => {
            tracing::error!(error = %redact(&e.to_string()), "submission failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the application could not be stored; retry with the same Idempotency-Key",
            )
        }
    }
}

/// An application's status, each department's progress, and the decision with its reasons.
#[utoipa::path(
    get, path = "/v1/applications/{id}",
    params(("id" = String, Path, description = "Application id or reference (GZF-…)")),
    responses((status = 200, body = ApplicationView), (status = 404, description = "No such application"))
)]
async fn get_application(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match status::application(&state.intake.db, &id, &state.context()).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no application with this id or reference"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, redact(&e.to_string())),
    }
}

/// A certificate by number, with whether it verifies.
#[utoipa::path(
    get, path = "/v1/certificates/{number}",
    params(("number" = String, Path, description = "Certificate number (WHZG-…)")),
    responses((status = 200, body = CertificateView), (status = 404, description = "No such certificate"))
)]
async fn get_certificate(State(state): State<ApiState>, Path(number): Path<String>) -> Response {
    let keys = match state.keys() {
        Ok(k) => k,
        Err(response) => return *response,
    };
    match status::certificate(&state.intake.db, &number, &keys, state.intake.clock.today()).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no certificate with this number"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, redact(&e.to_string())),
    }
}

/// The public keys certificates are signed with.
#[utoipa::path(get, path = "/v1/keys", responses((status = 200, body = KeyList), (status = 503, description = "A key file is unreadable")))]
async fn get_keys(State(state): State<ApiState>) -> Response {
    let ring = match state.keys() {
        Ok(k) => k,
        Err(response) => return *response,
    };
    let keys = ring
        .public_keys()
        .map(|(id, key)| PublicKey {
            key_id: id.clone(),
            algorithm: "Ed25519".into(),
            public_key: key,
        })
        .collect();
    Json(KeyList { keys }).into_response()
}
