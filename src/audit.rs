//! `prh audit verify`: recomputes an application's evidence chain from the pipeline
//! database and names the first broken link.

use anyhow::{Context, bail};
use prh_common::{
    audit::{self, kinds},
    config::Settings,
    store::{
        self,
        pipeline::{applications, decisions},
    },
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::process::ExitCode;

/// Exit status 0 when the chain is whole, 1 when a link is broken.
pub async fn verify(settings: &Settings, id: &str) -> anyhow::Result<ExitCode> {
    let db = store::connect(&settings.pipeline_db()).await?;
    store::db::require_table(&db, "audit_events", "pipeline database").await?;
    let found = match uuid::Uuid::parse_str(id) {
        Ok(uuid) => {
            applications::Entity::find()
                .filter(applications::Column::Id.eq(uuid))
                .one(&db)
                .await?
        }
        Err(_) => {
            applications::Entity::find()
                .filter(applications::Column::Reference.eq(id))
                .one(&db)
                .await?
        }
    };
    let Some(app) = found else {
        bail!("no application has the id or reference `{id}`");
    };
    let links = store::audit::chain(&db, app.id)
        .await
        .context("reading the audit trail")?;
    println!(
        "{} ({}): {} events",
        app.reference.as_deref().unwrap_or("?"),
        app.id,
        links.len()
    );
    for link in &links {
        println!(
            "  {:>3}  {:<12} {}  {}…",
            link.seq,
            link.kind,
            link.at.format("%Y-%m-%d %H:%M:%S%.6f"),
            &link.hash[..16]
        );
    }
    let mut verdict = audit::verify(&links).map(|_| ()).map_err(|e| e.to_string());
    // The chain cannot show its own end was cut off; the decision table can.
    let decided = decisions::Entity::find_by_id(app.id).one(&db).await?.is_some();
    if verdict.is_ok() && decided && !links.iter().any(|l| l.kind == kinds::DECISION) {
        verdict = Err("the application is decided but the trail has no decision event".into());
    }
    match verdict {
        Ok(()) => {
            println!("INTACT: every event follows the one before and matches its hash");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("BROKEN: {broken}");
            Ok(ExitCode::from(1))
        }
    }
}
