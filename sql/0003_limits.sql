-- The code-draw budget, counted per minute across every process (WeChat allows 5,000 draws a
-- minute per mini program; a flood must not spend them).
CREATE TABLE draw_budget (
    minute  timestamptz PRIMARY KEY,
    draws   integer NOT NULL
);

-- A browser asking for a new login while it has a live pending one gets that one back.
CREATE INDEX scenes_owner ON scenes (owner, created_at);
