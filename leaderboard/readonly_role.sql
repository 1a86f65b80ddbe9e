-- A read-only PostgreSQL role for the leaderboard website (it never writes).
--
-- Run as the owner of the results tables (the role that runs `phasebench db upgrade`), connected
-- to the results database, e.g.:
--     psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f leaderboard/readonly_role.sql
-- then set the password (ALTER ROLE phasebench_web PASSWORD '...') or use your pg_hba method,
-- and start the site with
--     PHASEBENCH_DB=postgresql+psycopg://phasebench_web:PASSWORD@HOST/DBNAME phasebench serve
-- Rename the role by replacing phasebench_web everywhere below. Roles are cluster-wide; the
-- grants are per database, so run it once in each results database.
CREATE ROLE phasebench_web LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
-- Every transaction of this role is read-only, even one that tries to write.
ALTER ROLE phasebench_web SET default_transaction_read_only = on;
REVOKE CREATE ON SCHEMA public FROM phasebench_web;
GRANT USAGE ON SCHEMA public TO phasebench_web;
-- The results tables and alembic_version (the site checks the schema revision).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO phasebench_web;
-- Tables created by later migrations (run by the owner executing this file) stay readable.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO phasebench_web;
