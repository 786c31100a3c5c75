-- What is waiting or running, found without reading the history: the queue
-- page and `odooops runs` (ops.queue()) read only these rows, however many
-- finished runs there are.
create index runs_active_idx on ops.runs (priority desc, id)
    where status in ('awaiting_authorization', 'queued', 'claimed', 'running');
