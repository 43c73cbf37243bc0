-- End users get LiteLLM's max_parallel_requests, as keys, users and teams have it.
ALTER TABLE end_users ADD COLUMN max_parallel_requests BIGINT;
