-- Import kinds (issue 15): the id a pull request had in the file it was imported from (a CSV "id"
-- column, a DevLake pull_requests.id), so review and commit files imported later can name the
-- pull request by that id instead of by repository and number.

CREATE TABLE imported_pull_request_ids (
    source_id VARCHAR NOT NULL,                 -- the id as the file gave it
    repo      VARCHAR NOT NULL,                 -- pull_requests.repo
    number    INTEGER NOT NULL                  -- pull_requests.number
);
