//! The office HTTP API: the manual-review queue and decisions, 补正 requests, objections,
//! revocations, re-checks and the deadline report. Each officer has an API key of their
//! own (`office.api_keys`); the key says who acted, and that name goes into the record.

use crate::{
    http::{ApiState, error},
    office::{ActionError, Verdict},
    report::{self, DepartmentDeadlines},
    status::{self, ApplicationView},
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use prh_common::{
    id_number::redact,
    store::pipeline::{applications, status as app_status},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Keys shorter than this are refused at start: they could be guessed.
const MIN_KEY_LEN: usize = 16;

/// The officers' keys, kept as SHA-256 digests, with the name each stands for.
#[derive(Debug, Clone, Default)]
pub struct OfficerKeys {
    keys: Vec<(String, [u8; 32])>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfficerKeyError {
    #[error("office.api_keys.{0}: a key must be at least {MIN_KEY_LEN} characters")]
    TooShort(String),
    #[error("office.api_keys: {0} and {1} have the same key")]
    Shared(String, String),
}

impl OfficerKeys {
    pub fn from_settings(keys: &BTreeMap<String, String>) -> Result<Self, OfficerKeyError> {
        let mut out: Vec<(String, [u8; 32])> = Vec::new();
        for (name, key) in keys {
            if key.trim().len() < MIN_KEY_LEN {
                return Err(OfficerKeyError::TooShort(name.clone()));
            }
            let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
            if let Some((other, _)) = out.iter().find(|(_, d)| *d == digest) {
                return Err(OfficerKeyError::Shared(other.clone(), name.clone()));
            }
            out.push((name.clone(), digest));
        }
        Ok(Self { keys: out })
    }

    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The officer a request's `X-Api-Key` belongs to; `development` when no keys are set.
    fn officer(&self, headers: &HeaderMap) -> Result<String, Box<Response>> {
        if !self.required() {
            return Ok("development".into());
        }
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "X-Api-Key is required: each officer has their own key",
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.keys
            .iter()
            .find(|(_, d)| *d == digest)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| Box::new(error(StatusCode::UNAUTHORIZED, "X-Api-Key is not an officer's key")))
    }
}

/// The officer a request acts as, from its `X-Api-Key`; refuses with 401 otherwise.
pub struct Officer(pub String);

impl axum::extract::FromRequestParts<ApiState> for Officer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &ApiState) -> Result<Self, Response> {
        state.officers.officer(&parts.headers).map(Officer).map_err(|r| *r)
    }
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/reviews", get(list_reviews))
        .route("/v1/applications/{id}/review", post(review))
        .route("/v1/applications/{id}/supplement-request", post(pause))
        .route("/v1/applications/{id}/supplement", post(resume))
        .route("/v1/applications/{id}/objections", post(object))
        .route("/v1/certificates/{number}/revoke", post(revoke))
        .route("/v1/certificates/{number}/recheck", post(recheck))
        .route("/v1/reports/deadlines", get(deadlines))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReviewRequest {
    pub outcome: Verdict,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SupplementRequest {
    /// The document the applicant is asked for.
    pub asked_for: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Supplement {
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Objection {
    pub objection: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Revocation {
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDone {
    /// The application's status after the action.
    pub status: String,
    pub by: String,
}

fn refused(e: ActionError) -> Response {
    let code = match &e {
        ActionError::NotFound(_) => StatusCode::NOT_FOUND,
        ActionError::Conflict(_) => StatusCode::CONFLICT,
        ActionError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ActionError::Submit(_) | ActionError::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, redact(&e.to_string()))
}

fn done(result: Result<String, ActionError>, by: String) -> Response {
    match result {
        Ok(status) => Json(ActionDone { status, by }).into_response(),
        Err(e) => refused(e),
    }
}

/// The manual-review queue: every referred case, oldest first, with its criteria and
/// facts (at most 200).
#[utoipa::path(get, path = "/v1/reviews", responses((status = 200, body = [ApplicationView]), (status = 401)))]
pub(crate) async fn list_reviews(State(state): State<ApiState>, _: Officer) -> Response {
    let ids: Result<Vec<uuid::Uuid>, _> = applications::Entity::find()
        .select_only()
        .column(applications::Column::Id)
        .filter(applications::Column::Status.eq(app_status::REFERRED))
        .order_by_asc(applications::Column::Seq)
        .limit(200)
        .into_tuple()
        .all(&state.intake.db)
        .await;
    let ids = match ids {
        Ok(ids) => ids,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, redact(&e.to_string())),
    };
    let context = state.context();
    let mut cases = Vec::with_capacity(ids.len());
    for id in ids {
        match status::application(&state.intake.db, &id.to_string(), &context).await {
            Ok(Some(view)) => cases.push(view),
            Ok(None) => {}
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, redact(&e.to_string())),
        }
    }
    Json(cases).into_response()
}

/// Decide a referred case (qualified or rejected) with a written reason.
#[utoipa::path(post, path = "/v1/applications/{id}/review", request_body = ReviewRequest,
    responses((status = 200, body = ActionDone), (status = 401), (status = 404), (status = 409, description = "Not a referred case"), (status = 422, description = "No reason given")))]
pub(crate) async fn review(
    State(state): State<ApiState>,
    Officer(by): Officer,
    Path(id): Path<String>,
    Json(body): Json<ReviewRequest>,
) -> Response {
    done(state.intake.review(&id, body.outcome, &body.reason, &by).await, by)
}

/// Ask the applicant for a missing document (补正): the clock stops.
#[utoipa::path(post, path = "/v1/applications/{id}/supplement-request", request_body = SupplementRequest,
    responses((status = 200, body = ActionDone), (status = 401), (status = 404), (status = 409), (status = 422)))]
pub(crate) async fn pause(
    State(state): State<ApiState>,
    Officer(by): Officer,
    Path(id): Path<String>,
    Json(body): Json<SupplementRequest>,
) -> Response {
    done(state.intake.pause(&id, &body.asked_for, &by).await, by)
}

/// The document arrived: the clock runs again.
#[utoipa::path(post, path = "/v1/applications/{id}/supplement", request_body = Supplement,
    responses((status = 200, body = ActionDone), (status = 401), (status = 404), (status = 409)))]
pub(crate) async fn resume(
    State(state): State<ApiState>,
    Officer(by): Officer,
    Path(id): Path<String>,
    Json(body): Json<Supplement>,
) -> Response {
    done(state.intake.resume(&id, body.note.as_deref(), &by).await, by)
}

/// Record an objection received during the public notice (公示): the case is referred.
#[utoipa::path(post, path = "/v1/applications/{id}/objections", request_body = Objection,
    responses((status = 200, body = ActionDone), (status = 401), (status = 404), (status = 409, description = "Not in its notice period")))]
pub(crate) async fn object(
    State(state): State<ApiState>,
    Officer(by): Officer,
    Path(id): Path<String>,
    Json(body): Json<Objection>,
) -> Response {
    done(state.intake.object(&id, &body.objection, &by).await, by)
}

/// Revoke a valid certificate, with the reason.
#[utoipa::path(post, path = "/v1/certificates/{number}/revoke", request_body = Revocation,
    responses((status = 200, body = ActionDone), (status = 401), (status = 404), (status = 409)))]
pub(crate) async fn revoke(
    State(state): State<ApiState>,
    Officer(by): Officer,
    Path(number): Path<String>,
    Json(body): Json<Revocation>,
) -> Response {
    let result = state.intake.revoke(&number, &body.reason, &by).await;
    done(result.map(|()| "revoked".to_owned()), by)
}

/// Start the yearly re-check (年审) of a certificate; 202 with the re-check's receipt.
#[utoipa::path(post, path = "/v1/certificates/{number}/recheck",
    responses((status = 202, body = crate::intake::Receipt), (status = 401), (status = 404), (status = 409)))]
pub(crate) async fn recheck(State(state): State<ApiState>, _: Officer, Path(number): Path<String>) -> Response {
    match state.intake.recheck(&number).await {
        Ok(receipt) => (StatusCode::ACCEPTED, Json(receipt)).into_response(),
        Err(e) => refused(e),
    }
}

/// Per department: answered in time, late, still silent, and mean working days taken.
#[utoipa::path(get, path = "/v1/reports/deadlines", responses((status = 200, body = [DepartmentDeadlines]), (status = 401)))]
pub(crate) async fn deadlines(State(state): State<ApiState>, _: Officer) -> Response {
    match report::deadlines(&state.intake.db, &state.context()).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, redact(&e.to_string())),
    }
}
