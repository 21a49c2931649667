//! 公安: identity, death records, hukou, residence permits and vehicles
//! (PS-IDENTITY, PS-ALIVE, PS-HUKOU, PS-RESIDENCE, PS-VEHICLE).

use super::{Answer, ByPerson, Check, Context, by_id, combine, rows_about};
use prh_common::{
    contract::{CheckRequest, NamedPerson, Subject},
    criteria::{CriterionCode as C, CriterionResult, ReasonCode as R},
    dates::years_before,
    money::Fen,
    store::registry::{ps_persons, ps_residence_permits, ps_vehicles},
};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait};
use std::collections::HashMap;

pub struct PublicSecurity;

pub struct Rows {
    persons: HashMap<String, ps_persons::Model>,
    vehicles: ByPerson<ps_vehicles::Model>,
    permits: ByPerson<ps_residence_permits::Model>,
}

impl Check for PublicSecurity {
    type Rows = Rows;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], _: &[&CheckRequest]) -> Result<Rows, DbErr> {
        let persons = rows_about(txn, ps_persons::Entity::find(), ps_persons::Column::IdNumber, ids).await?;
        let vehicles = rows_about(txn, ps_vehicles::Entity::find(), ps_vehicles::Column::IdNumber, ids).await?;
        let permits = rows_about(
            txn,
            ps_residence_permits::Entity::find(),
            ps_residence_permits::Column::IdNumber,
            ids,
        )
        .await?;
        Ok(Rows {
            persons: by_id(persons, |r| &r.id_number),
            vehicles: ByPerson::new(vehicles, |r| &r.id_number),
            permits: ByPerson::new(permits, |r| &r.id_number),
        })
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Rows) -> Option<Answer> {
        let Subject::PublicSecurity { persons } = &request.subject else {
            return None;
        };
        let vehicles = rows.vehicles.of(persons.iter().map(|p| p.id_number.expose()));
        // Only the applicant's residence permit counts.
        let permits = rows.permits.of(persons.first().map(|p| p.id_number.expose()));
        Some(Answer {
            criteria: evaluate(ctx, persons, &rows.persons, &vehicles, &permits),
            facts: Default::default(),
        })
    }
}

pub(super) fn evaluate(
    ctx: &Context<'_>,
    persons: &[NamedPerson],
    records: &HashMap<String, ps_persons::Model>,
    vehicles: &[ps_vehicles::Model],
    permits: &[ps_residence_permits::Model],
) -> Vec<CriterionResult> {
    let p = ctx.policy;
    let missing: Vec<String> = persons
        .iter()
        .filter(|x| !records.contains_key(x.id_number.expose()))
        .map(|x| x.id_number.masked())
        .collect();
    let found = || {
        persons
            .iter()
            .filter_map(|x| records.get(x.id_number.expose()).map(|r| (x, r)))
    };

    let mismatches = found()
        .filter(|(x, r)| x.name != r.name)
        .map(|(x, _)| {
            (
                R::IdentityMismatch,
                format!("name differs from the record of {}", x.id_number.masked()),
            )
        })
        .collect();
    let identity = combine(
        C::PsIdentity,
        mismatches,
        &missing,
        format!("{} persons registered, names match", persons.len()),
        "registered, name matches".into(),
    );

    let deceased = found()
        .filter(|(_, r)| r.deceased)
        .map(|(x, _)| (R::PersonDeceased, format!("{} recorded deceased", x.id_number.masked())))
        .collect();
    let alive = combine(
        C::PsAlive,
        deceased,
        &missing,
        "nobody recorded deceased".into(),
        "nobody recorded deceased".into(),
    );

    let applicant = persons.first();
    let applicant_record = applicant.and_then(|a| records.get(a.id_number.expose()));
    let applicant_missing: Vec<String> = match (applicant, applicant_record) {
        (Some(a), None) => vec![a.id_number.masked()],
        _ => Vec::new(),
    };
    let since = years_before(ctx.date, p.hukou_min_years);
    let hukou_threshold = format!("hukou in {} since {since} or earlier", p.urban_regions.join("/"));
    let hukou = match applicant_record {
        Some(r) if !p.urban_regions.contains(&r.hukou_region) => CriterionResult::fail(
            C::PsHukou,
            vec![R::HukouNotLocal],
            format!("hukou region {}", r.hukou_region),
            hukou_threshold,
        ),
        Some(r) if r.hukou_since > since => CriterionResult::fail(
            C::PsHukou,
            vec![R::HukouTooRecent],
            format!("hukou in {} since {}", r.hukou_region, r.hukou_since),
            hukou_threshold,
        ),
        Some(r) => CriterionResult::pass(
            C::PsHukou,
            format!("hukou in {} since {}", r.hukou_region, r.hukou_since),
            hukou_threshold,
        ),
        None => combine(C::PsHukou, vec![], &applicant_missing, String::new(), hukou_threshold),
    };

    let residence_threshold = "urban hukou, or a residence permit in the city valid on the application date".to_owned();
    let residence = match applicant_record {
        Some(r) if p.urban_regions.contains(&r.hukou_region) => CriterionResult::pass(
            C::PsResidence,
            format!("hukou in {}", r.hukou_region),
            residence_threshold,
        ),
        Some(_) => match permits
            .iter()
            .find(|x| p.city_regions.contains(&x.region) && x.valid_until >= ctx.date)
        {
            Some(x) => CriterionResult::pass(
                C::PsResidence,
                format!("residence permit valid until {}", x.valid_until),
                residence_threshold,
            ),
            None => CriterionResult::fail(
                C::PsResidence,
                vec![R::NoResidencePermit],
                "no valid residence permit in the city",
                residence_threshold,
            ),
        },
        None => combine(
            C::PsResidence,
            vec![],
            &applicant_missing,
            String::new(),
            residence_threshold,
        ),
    };

    let counted: Vec<&ps_vehicles::Model> = vehicles.iter().filter(|v| !v.disability_adapted).collect();
    let max_value = counted.iter().map(|v| v.value_fen).max().unwrap_or(0);
    let vehicle_threshold = format!(
        "at most {} vehicle(s), each at most {}",
        p.vehicle_max_count, p.vehicle_max_value_fen
    );
    let observed = format!("{} vehicle(s) counted, highest value {}", counted.len(), Fen(max_value));
    let over = counted.len() as u32 > p.vehicle_max_count || max_value > p.vehicle_max_value_fen.0;
    let vehicle_failures = if over {
        vec![(R::VehicleExceeds, observed.clone())]
    } else {
        vec![]
    };
    let vehicle = combine(C::PsVehicle, vehicle_failures, &missing, observed, vehicle_threshold);

    vec![identity, alive, hukou, residence, vehicle]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prh_common::id_number::IdNumber;
    use prh_common::{application::Relation, criteria::Outcome, policy::Policy};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn person(body: &str) -> NamedPerson {
        NamedPerson {
            name: "张三".into(),
            id_number: IdNumber::from_body(body).unwrap(),
            relation: Relation::Applicant,
        }
    }

    fn record(p: &NamedPerson, region: &str, since: NaiveDate) -> ps_persons::Model {
        ps_persons::Model {
            id_number: p.id_number.expose().into(),
            name: p.name.clone(),
            hukou_region: region.into(),
            hukou_since: since,
            deceased: false,
        }
    }

    fn vehicle(p: &NamedPerson, yuan: i64, adapted: bool) -> ps_vehicles::Model {
        ps_vehicles::Model {
            id: 0,
            id_number: p.id_number.expose().into(),
            plate: "鲁K".into(),
            value_fen: yuan * 100,
            disability_adapted: adapted,
        }
    }

    /// (hukou region, since, vehicles (yuan, adapted), expected HUKOU, expected VEHICLE)
    #[test]
    fn hukou_and_vehicles_by_table() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: d(2026, 11, 26),
        };
        let a = person("37100219800101123");
        type Case<'a> = (&'a str, NaiveDate, &'a [(i64, bool)], Outcome, Outcome);
        let cases: &[Case] = &[
            ("371002", d(2021, 11, 26), &[], Outcome::Pass, Outcome::Pass),
            ("371002", d(2021, 11, 27), &[], Outcome::Fail, Outcome::Pass),
            (
                "371082",
                d(2000, 1, 1),
                &[(150_000, false)],
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                "371003",
                d(2000, 1, 1),
                &[(150_001, false)],
                Outcome::Pass,
                Outcome::Fail,
            ),
            (
                "371003",
                d(2000, 1, 1),
                &[(10_000, false), (10_000, false)],
                Outcome::Pass,
                Outcome::Fail,
            ),
            (
                "371003",
                d(2000, 1, 1),
                &[(10_000, false), (900_000, true)],
                Outcome::Pass,
                Outcome::Pass,
            ),
        ];
        for (region, since, cars, hukou, vehicles_outcome) in cases {
            let records = HashMap::from([(a.id_number.expose().to_owned(), record(&a, region, *since))]);
            let cars: Vec<_> = cars.iter().map(|(y, ad)| vehicle(&a, *y, *ad)).collect();
            let got = evaluate(&ctx, std::slice::from_ref(&a), &records, &cars, &[]);
            assert_eq!(
                (got[2].outcome, got[4].outcome),
                (*hukou, *vehicles_outcome),
                "{region} {since} {cars:?}"
            );
        }
    }

    #[test]
    fn missing_records_refer_and_name_mismatch_fails() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: d(2026, 11, 26),
        };
        let a = person("37100219800101123");
        let got = evaluate(&ctx, std::slice::from_ref(&a), &HashMap::new(), &[], &[]);
        assert!(
            got.iter()
                .all(|c| c.outcome == Outcome::Refer && c.reasons == vec![R::RecordNotFound])
        );

        let mut r = record(&a, "371002", d(2000, 1, 1));
        r.name = "李四".into();
        let records = HashMap::from([(a.id_number.expose().to_owned(), r)]);
        let got = evaluate(&ctx, std::slice::from_ref(&a), &records, &[], &[]);
        assert_eq!(got[0].outcome, Outcome::Fail);
        assert_eq!(
            got[2].outcome,
            Outcome::Pass,
            "other criteria use the record held under the number"
        );
    }

    #[test]
    fn residence_needs_urban_hukou_or_a_valid_permit() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: d(2026, 11, 26),
        };
        let a = person("37100219800101123");
        let records = HashMap::from([(a.id_number.expose().to_owned(), record(&a, "371082", d(2000, 1, 1)))]);
        let permit = |until| ps_residence_permits::Model {
            id: 0,
            id_number: a.id_number.expose().into(),
            region: "371002".into(),
            valid_until: until,
        };
        for (permits, expected) in [
            (vec![], Outcome::Fail),
            (vec![permit(d(2026, 11, 26))], Outcome::Pass),
            (vec![permit(d(2026, 11, 25))], Outcome::Fail),
        ] {
            let got = evaluate(&ctx, std::slice::from_ref(&a), &records, &[], &permits);
            assert_eq!(got[3].outcome, expected, "{permits:?}");
        }
    }
}
