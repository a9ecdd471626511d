//! User management, for admins only: the users and their roles, adding one, removing one
//! (their sessions end at once).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::state::AppState;
use super::forms::Posted;
use super::view::{Frame, Who, error_page, need, page, url_encode, when};
use crate::model::Role;
use crate::users::UserError;

pub struct UserRow {
    pub name: String,
    pub role: &'static str,
    pub added: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    f: Frame,
    users: Vec<UserRow>,
    notice: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    notice: String,
    #[serde(default)]
    problem: String,
}

pub async fn list(State(st): State<AppState>, who: Who, Query(n): Query<Notice>) -> Response {
    if let Some(r) = need(&who, Role::Admin) {
        return r;
    }
    match st.users.list().await {
        Ok(list) => {
            let mut r = page(&UsersPage {
                users: list
                    .into_iter()
                    .map(|u| UserRow {
                        name: u.name,
                        role: u.role.as_str(),
                        added: when(u.created_at),
                    })
                    .collect(),
                notice: n.notice,
                problem: n.problem.clone(),
                f: Frame::new(&who, "users", "Users"),
            });
            if !n.problem.is_empty() {
                *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            r
        }
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn back(notice: &str, problem: &str) -> Response {
    Redirect::to(&format!(
        "/ui/users?notice={}&problem={}",
        url_encode(notice),
        url_encode(problem)
    ))
    .into_response()
}

#[derive(Deserialize)]
pub struct AddForm {
    name: String,
    role: String,
    password: String,
}

pub async fn add(State(st): State<AppState>, Posted(who, a): Posted<AddForm>) -> Response {
    if let Some(r) = need(&who, Role::Admin) {
        return r;
    }
    let role: Role = match a.role.parse() {
        Ok(r) => r,
        Err(e) => return back("", &e),
    };
    match st.users.add(&a.name, role, &a.password).await {
        Ok(u) => {
            who.record(&st, "user.add", &format!("{} ({})", u.name, u.role))
                .await;
            back(&format!("User {} added ({}).", u.name, u.role), "")
        }
        Err(e @ (UserError::Invalid(_) | UserError::Conflict(_))) => back("", &e.to_string()),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn rm(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Posted(who, Nothing {}): Posted<Nothing>,
) -> Response {
    if let Some(r) = need(&who, Role::Admin) {
        return r;
    }
    match st.users.rm(&name).await {
        Ok(u) => {
            who.record(&st, "user.rm", &u.name).await;
            back(
                &format!("User {} removed; their sessions are ended.", u.name),
                "",
            )
        }
        Err(e @ (UserError::NotFound(_) | UserError::Conflict(_))) => back("", &e.to_string()),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
