//! Entities of the six department registries. Each department's tables live in its own
//! database (or PostgreSQL schema): a pool only ever opens its own.
//!
//! A `*_persons` row means "the department knows this person"; its absence is
//! `record_not_found`. Rows in the other tables are what the department holds about them,
//! so "no vehicle" (known person, no vehicle rows) is an answer, not a missing record.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

/// 公安 — household registration (户籍) and death records.
pub mod ps_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ps_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
        pub name: String,
        /// Region code of the hukou (户籍所在地).
        pub hukou_region: String,
        /// When the hukou was registered there.
        pub hukou_since: Date,
        pub deceased: bool,
    }
    no_relations!();
}

/// 公安 — residence permits (居住证).
pub mod ps_residence_permits {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ps_residence_permits")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        pub region: String,
        pub valid_until: Date,
    }
    no_relations!();
}

/// 公安 (车管所) — registered vehicles.
pub mod ps_vehicles {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ps_vehicles")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        pub plate: String,
        pub value_fen: i64,
        pub disability_adapted: bool,
    }
    no_relations!();
}

/// 民政 — marriage, assistance status, verified income and financial assets.
pub mod ca_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ca_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
        pub name: String,
        /// `single`, `married`, `divorced` or `widowed`.
        pub marital_status: String,
        pub spouse_id_number: Option<String>,
        /// Date of the current marriage registration.
        pub married_on: Option<Date>,
        /// `none`, `low_income`, `dibao` or `tekun`.
        pub assistance_category: String,
        pub verified_monthly_income_fen: i64,
        pub financial_assets_fen: i64,
    }
    no_relations!();
}

/// 人社 — insured persons.
pub mod hr_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hr_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
        pub name: String,
        pub employer: Option<String>,
    }
    no_relations!();
}

/// 人社 — one row per month a contribution was paid.
pub mod hr_contributions {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hr_contributions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        /// `yyyymm`
        pub month: i32,
        /// 补缴: paid afterwards; never counts.
        pub back_paid: bool,
    }
    no_relations!();
}

/// 自然资源和规划 — persons the real-estate register has been searched for.
pub mod nr_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nr_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
    }
    no_relations!();
}

/// 自然资源和规划 — properties (不动产), held now or transferred.
pub mod nr_properties {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nr_properties")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        /// `residential` or `non_residential`.
        pub usage: String,
        pub area_centi_sqm: i64,
        pub acquired_on: Date,
        pub transferred_on: Option<Date>,
        /// `sale`, `gift`, `divorce` or `other`.
        pub transfer_cause: Option<String>,
    }
    no_relations!();
}

/// 住建 — persons the housing bureau has files for.
pub mod hs_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hs_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
    }
    no_relations!();
}

/// 住建 — public housing tenancies and rent subsidies.
pub mod hs_benefits {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hs_benefits")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        /// `public_rental` or `rent_subsidy`.
        pub kind: String,
        pub active: bool,
    }
    no_relations!();
}

/// 住建 — purchases of 经济适用房, 限价房 or 房改房.
pub mod hs_purchases {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hs_purchases")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        /// `economical`, `price_capped` or `reform`.
        pub kind: String,
        pub purchased_on: Date,
    }
    no_relations!();
}

/// 住建 — fraud bans (骗租禁入).
pub mod hs_bans {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hs_bans")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        pub imposed_on: Date,
    }
    no_relations!();
}

/// 住建 — who is part of which application, for HS-DUPLICATE. Written by the housing pool
/// itself when it checks an application; unique per (application, person).
pub mod hs_application_members {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hs_application_members")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: Uuid,
        pub id_number: String,
        pub closed: bool,
    }
    no_relations!();
}

/// 教育 — persons in the degree register (学信).
pub mod ed_persons {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ed_persons")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_number: String,
        pub name: String,
    }
    no_relations!();
}

/// 教育 — degrees.
pub mod ed_degrees {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ed_degrees")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub id_number: String,
        /// `vocational`, `college`, `bachelor`, `master` or `doctor`.
        pub level: String,
        pub graduated_on: Date,
    }
    no_relations!();
}
