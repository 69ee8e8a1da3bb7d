-- Where the browser asking to log in is, roughly, as a trusted proxy named it (a geo header);
-- the phone shows it before anyone confirms.
ALTER TABLE scenes ADD COLUMN browser_place text NOT NULL DEFAULT '';

-- Avatars uploaded by a scene's claimant (the fill-in UI gives a temporary local file): kept
-- re-encoded, served from our own URL, and put on the user when the claimant confirms.
CREATE TABLE avatars (
    id          text PRIMARY KEY,
    scene       text NOT NULL,
    claimant    text NOT NULL,
    image       bytea NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX avatars_scene_claimant ON avatars (scene, claimant, created_at);
