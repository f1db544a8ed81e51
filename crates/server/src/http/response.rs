//! Success envelopes (SPEC §2): `{"data": …}`, plus `pagination` on
//! management lists.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_store::{Page, PageRequest};
use serde::Serialize;
use utoipa::ToSchema;

/// A JSON body serialised already (from a cached template or rendered
/// parts), answered 200 as `application/json`.
pub fn json_text(body: impl Into<axum::body::Body>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// `{"data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `?page=&page_size=` as answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub page_count: i64,
    pub total_count: i64,
}

/// `{"data": [...], "pagination": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

impl<T> List<T> {
    pub fn new(page: Page<T>, request: PageRequest) -> Self {
        let size = i64::from(request.size.max(1));
        Self {
            data: page.items,
            pagination: Pagination {
                page: request.page,
                page_size: request.size,
                page_count: (page.total + size - 1) / size,
                total_count: page.total,
            },
        }
    }
}

impl<T: Serialize> IntoResponse for Data<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

impl<T: Serialize> IntoResponse for List<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// `201 Created` with `{"data": …}`.
pub fn created<T: Serialize>(data: T) -> Response {
    (StatusCode::CREATED, Json(Data { data })).into_response()
}

/// `{"data": …}` with 200.
pub fn ok<T: Serialize>(data: T) -> Data<T> {
    Data { data }
}
