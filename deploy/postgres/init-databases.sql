-- Run once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d), as POSTGRES_USER in POSTGRES_DB (`prh`, the pipeline
-- database). Each department's registry gets its own database, so a pool's connection
-- URL reaches only its own records. `prh migrate` then creates the schemas and tables.
--
-- Per-department logins (each pool able to open only its own registry) are issue 6; until
-- then every database is owned by the one `prh` role.
CREATE DATABASE registry_public_security OWNER prh;
CREATE DATABASE registry_civil_affairs OWNER prh;
CREATE DATABASE registry_human_resources OWNER prh;
CREATE DATABASE registry_natural_resources OWNER prh;
CREATE DATABASE registry_housing OWNER prh;
CREATE DATABASE registry_education OWNER prh;
