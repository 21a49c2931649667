//! `prh report deadlines`: how each department keeps its statutory limit — answered in
//! time, answered late, silent past it, still within it — and the mean working days taken.

use crate::status::Context;
use chrono::{DateTime, Utc};
use prh_common::{
    department::{Department, Track},
    store::{
        clocks::pauses_of,
        pipeline::{applications, findings},
    },
    time_limit::CaseClock,
};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QuerySelect};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DepartmentDeadlines {
    pub department: Department,
    /// Check requests (one per application whose track needs the department).
    pub asked: u64,
    pub answered_in_time: u64,
    pub answered_late: u64,
    /// No answer and past the limit.
    pub silent_overdue: u64,
    /// No answer yet, still within the limit (or the clock is stopped).
    pub pending: u64,
    /// Mean working days from submission to answer, over the answered ones.
    pub mean_working_days: Option<f64>,
}

/// The report over every application, as of `context.today`.
pub async fn deadlines(db: &DatabaseConnection, context: &Context<'_>) -> Result<Vec<DepartmentDeadlines>, DbErr> {
    let apps: Vec<(Uuid, String, DateTime<Utc>, Option<String>)> = applications::Entity::find()
        .select_only()
        .columns([
            applications::Column::Id,
            applications::Column::Track,
            applications::Column::SubmittedAt,
            applications::Column::PolicyVersion,
        ])
        .into_tuple()
        .all(db)
        .await?;
    let answers: HashMap<(Uuid, String), DateTime<Utc>> = findings::Entity::find()
        .select_only()
        .columns([
            findings::Column::ApplicationId,
            findings::Column::Department,
            findings::Column::ReceivedAt,
        ])
        .into_tuple::<(Uuid, String, DateTime<Utc>)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, d, at)| ((id, d), at))
        .collect();
    let pauses = pauses_of(db, None).await?;
    let mut rows: Vec<DepartmentDeadlines> = Department::ALL
        .into_iter()
        .map(|department| DepartmentDeadlines {
            department,
            asked: 0,
            answered_in_time: 0,
            answered_late: 0,
            silent_overdue: 0,
            pending: 0,
            mean_working_days: None,
        })
        .collect();
    let mut days: HashMap<Department, (u64, u64)> = HashMap::new();
    for (id, track, submitted_at, version) in apps {
        let Ok(track) = track.parse::<Track>() else { continue };
        let limit = version
            .and_then(|v| context.policies.get(&v).map(|p| p.department_working_days))
            .unwrap_or(5);
        let clock = CaseClock {
            calendar: context.calendar,
            start: prh_common::china_date(submitted_at),
            pauses: pauses.get(&id).map(Vec::as_slice).unwrap_or_default(),
        };
        for department in track.departments() {
            let Some(row) = rows.iter_mut().find(|r| r.department == *department) else {
                continue;
            };
            row.asked += 1;
            match answers.get(&(id, department.as_str().to_owned())) {
                Some(at) => {
                    let on = prh_common::china_date(*at);
                    let used = u64::from(clock.used(on));
                    let sum = days.entry(*department).or_default();
                    *sum = (sum.0 + used, sum.1 + 1);
                    if clock.is_overdue(limit, on) {
                        row.answered_late += 1;
                    } else {
                        row.answered_in_time += 1;
                    }
                }
                None if clock.is_overdue(limit, context.today) => row.silent_overdue += 1,
                None => row.pending += 1,
            }
        }
    }
    for row in &mut rows {
        row.mean_working_days = days
            .get(&row.department)
            .filter(|(_, n)| *n > 0)
            .map(|(sum, n)| *sum as f64 / *n as f64);
    }
    Ok(rows)
}
