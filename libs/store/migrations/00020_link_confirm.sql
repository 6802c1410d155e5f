-- environment_rules.link_confirm: whether the bookmarkable deploy link
-- (<fabu>/deploy/<project>?ref=...) asks the person who opens it to confirm before it
-- starts a run (TRUE, the default and the value for a project without a row) or starts it
-- as soon as the page is shown to them (FALSE). Either way opening the link only reads on
-- the server: the run is started by the web UI's POST, never by a GET, so link prefetchers
-- and crawlers never deploy (web/src/views/DeployLinkView.vue).

-- +goose Up
ALTER TABLE environment_rules ADD COLUMN link_confirm BOOLEAN NOT NULL DEFAULT TRUE;

-- +goose Down
ALTER TABLE environment_rules DROP COLUMN link_confirm;
