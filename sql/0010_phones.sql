-- Phone numbers (WXLOGIN_PHONE): sealed at rest under a key derived from the AppSecret (which a
-- dump does not hold), and a masked form for the owner's eyes (the page, `wxlogin users show`).
ALTER TABLE users ADD COLUMN phone_sealed bytea;
ALTER TABLE users ADD COLUMN phone_masked text;

-- A scene's link for a phone's own browser (GET /api/scenes/{scene}/link), made once like its
-- code; and how the person arrived in the mini program (its entry scene value: 1047 a scanned
-- code, 1048 a long-press, 1049 the album, 1065 a URL scheme, 1194 a URL link, 1286 a plain
-- scheme), recorded with the scan.
ALTER TABLE scenes ADD COLUMN link text;
ALTER TABLE scenes ADD COLUMN link_kind text;
ALTER TABLE scenes ADD COLUMN entry integer;

-- WeChat refused to make links of a kind for a mini program (40002 an individual mini program,
-- 85079 not published, quotas): remembered until `until`, so the server stops asking.
CREATE TABLE link_refusals (
    appid    text NOT NULL,
    kind     text NOT NULL,
    errcode  integer NOT NULL,
    until    timestamptz NOT NULL,
    PRIMARY KEY (appid, kind)
);

-- Logins by how people arrived, per day, for scenes already swept (the sweeper adds them with
-- the funnel); live scenes are counted from `scenes`.
CREATE TABLE arrival_days (
    day     date NOT NULL,
    entry   integer NOT NULL,  -- 0: not told
    logins  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, entry)
);
