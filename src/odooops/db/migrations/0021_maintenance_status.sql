-- An environment under maintenance: production (or a staging branch that
-- updates its own database) while an update runs; the router answers 503.
-- Its own migration: a new enum value can be used only once committed.
alter type ops.environment_status add value 'maintenance';
